# mlops-console: `make run` and `make test` install what is missing, build, and run. Both are idempotent.
SHELL := /bin/bash
CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SITE := target/site
PKG := $(SITE)/pkg
NAME := mlops_console
WASM_PROFILE ?= debug
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock)
export SQLX_OFFLINE ?= true
export LEPTOS_SITE_ROOT ?= $(SITE)

.PHONY: run test setup setup-test site server bench bench-runs lint fmt clean-data sqlx-prepare

## run: build everything and start the console (PORT selects the port, default 3000)
run: setup site server
	./target/debug/mlops-console

## test: every test, browser tests included
test: setup setup-test site
	TEST_DATABASE_URL=$$(scripts/test-db.sh) $(CARGO) test --workspace --no-fail-fast -- --test-threads=4

## setup: the wasm toolchain and the PostgreSQL binaries for the embedded database
setup:
	@rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if [ "$$(wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
		echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
		$(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null && ! command -v pg_config >/dev/null; then \
		echo "installing PostgreSQL (for the embedded database)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; fi

## setup-test: headless Chromium and its driver for the browser tests
setup-test:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing chromium and chromium-driver"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; fi

## site: the hydration wasm, its JS glue, the stylesheet and public files in target/site
site:
	$(CARGO) build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate $(if $(filter release,$(WASM_PROFILE)),--profile wasm-release,)
	@mkdir -p $(PKG)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG) --out-name $(NAME) \
		target/wasm32-unknown-unknown/$(if $(filter release,$(WASM_PROFILE)),wasm-release,debug)/app.wasm
	@mv -f $(PKG)/$(NAME)_bg.wasm $(PKG)/$(NAME).wasm
	@cp style/main.css $(PKG)/$(NAME).css
	@cp -r public/. $(SITE)/

server:
	$(CARGO) build -p server --bin mlops-console

## bench: overview throughput and latency against the same HTML as a static file (see BENCHMARKS.md)
bench: setup
	$(MAKE) site WASM_PROFILE=release
	$(CARGO) build --release -p server --bin mlops-console
	./bench/overview.sh

## bench-runs: GET /api/v1/runs over 1,000,000 runs against the bare SQL (see BENCHMARKS.md)
bench-runs: setup
	$(CARGO) build --release -p server --bin mlops-console
	./bench/runs.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p server --all-targets -- -D warnings
	$(CARGO) clippy -p app --all-targets -- -D warnings
	$(CARGO) clippy -p app --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -- -D warnings

fmt:
	$(CARGO) fmt --all

## sqlx-prepare: refresh .sqlx/ after changing a query (needs DATABASE_URL with the migrations applied)
sqlx-prepare:
	rm -rf .sqlx && mkdir -p .sqlx
	$(CARGO) clean -p server
	SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$(CURDIR)/.sqlx $(CARGO) check -p server --all-targets

clean-data:
	rm -rf .data
