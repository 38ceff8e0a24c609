# waypass: build, test and demo entry points. `make test` is what CI runs.

CARGO ?= cargo
# Where cargo puts its output (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
BIN_DIR := $(TARGET_DIR)/debug

.PHONY: deps build test demo doc bench fuzz

# Debian packages the build and the tests need (installed only when missing).
deps:
	scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --bins

# The end-to-end tests in tests/ run the real binaries from target/debug, so
# the binaries are built before `cargo test`.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace
	CARGO_TARGET_DIR=target/interop WAYPASS_BIN_DIR=$(abspath $(BIN_DIR)) $(CARGO) test --manifest-path interop/Cargo.toml

# Runs scripts/demo.sh once it exists. Until then: a server on a socket in a
# fresh temporary directory, one `keymap` client against it, then the server
# is stopped and the directory removed.
demo: build
	@if [ -x scripts/demo.sh ]; then exec scripts/demo.sh; fi; \
	set -eu; \
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/waypass-demo.XXXXXX"); \
	sock="$$dir/wayland-demo"; \
	"$(BIN_DIR)/waypass-server" --socket "$$sock" >"$$dir/server.out" & \
	server=$$!; \
	trap 'kill $$server 2>/dev/null || true; wait $$server 2>/dev/null || true; rm -rf "$$dir"' EXIT; \
	tries=0; \
	until [ -s "$$dir/server.out" ]; do \
		if ! kill -0 $$server 2>/dev/null || [ $$tries -ge 100 ]; then \
			echo "demo: waypass-server did not start" >&2; exit 1; \
		fi; \
		sleep 0.1; tries=$$((tries + 1)); \
	done; \
	echo "demo: server listening on $$(head -n 1 "$$dir/server.out")"; \
	"$(BIN_DIR)/waypass-client" --socket "$$sock" keymap

doc: deps
	RUSTDOCFLAGS='-D warnings' $(CARGO) doc --workspace --no-deps

# Coverage-guided fuzzing of the wire decoder and the server's dispatch on
# the stable toolchain (installs cargo-fuzz if missing): FUZZ_SECONDS per
# target, 60 by default. See scripts/fuzz.sh and RELIABILITY.md.
fuzz: deps
	scripts/fuzz.sh

# The benchmarks of issue 7 (see BENCHMARKS.md): builds waypass-server and
# the bench harness in release and prints the Markdown report. Extra
# arguments through BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick`.
bench: deps
	bench/run.sh $(BENCH_ARGS)
