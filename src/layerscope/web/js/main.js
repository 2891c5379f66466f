// The served page: the explorer (app.js) talking to layerscope's server over its WebSocket.

import Alpine from "/static/vendor/alpine.esm.min.js";
import { explorer } from "./app.js";
import { Client, socketURL } from "./core/client.js";

Alpine.data("app", () => explorer({ Alpine, client: new Client(socketURL()) }));
Alpine.start();
