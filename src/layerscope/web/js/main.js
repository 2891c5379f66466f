// The served page: the explorer (app.js) talking to layerscope's server over its WebSocket.

import Alpine from "/static/vendor/alpine.esm.min.js";
import { explorer } from "./app.js";
import { Client, socketURL } from "./core/client.js";
import { trackUsage } from "./core/usage.js";

const client = new Client(socketURL());
const usage = trackUsage(client); // layers scrubbed, views and experiments: counts, never text
Alpine.data("app", () => explorer({ Alpine, client, usage }));
Alpine.start();
