# ipckit: the two commands a newcomer runs are `make demo` and `make check`.
CARGO ?= cargo
MACOS_TARGET ?= aarch64-apple-darwin

.PHONY: stability all demo check fmt clippy doc test nextest doctest suite check-macos bench bench-json bench-table clean mutants student-crate html-check

all: check

## The main job: every reference program, run under the audit, in a table.
demo:
	$(CARGO) build --release --quiet
	./target/release/ipckit demo

## Everything CI checks on Linux: formatting, lints, docs, the whole test suite
## once: `cargo nextest run` in two parts when it is installed
## (.config/nextest.toml: first every test that grades no port, the sleep-bound
## conformance tests leading; then the tests that grade or audit ports, the
## grader's three at a time; both parts run, and either failing fails), else
## `cargo test`; then the doc tests (nextest does not run them).
check: fmt clippy doc suite doctest

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

## Every public item documented (missing_docs), and no broken doc link.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet

## The suite under plain `cargo test` (threads in one process per test binary).
test:
	$(CARGO) test --lib --bins --tests
	$(CARGO) test --doc

nextest:
	@rc=0; \
	$(CARGO) nextest run --no-fail-fast --profile sleepers || rc=1; \
	$(CARGO) nextest run --no-fail-fast --profile graders || rc=1; \
	exit $$rc

doctest:
	$(CARGO) test --doc

suite:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory nextest; \
	else \
		echo "cargo-nextest not installed: running the suite with cargo test (cargo install cargo-nextest)"; \
		$(CARGO) test --lib --bins --tests; \
	fi

## Verdicts that never flip (issues 10 and 11): every sample port graded 5 times in a
## row, and a class graded in parallel by an unprivileged user 5 times: identical
## verdicts (slow, so not in `check`; .ci/run runs it).
stability:
	$(CARGO) test --test grade_meaning -- --ignored
	$(CARGO) test --test containment -- --ignored

## Type-checks every target for macOS (cross-checking only: nothing runs).
check-macos:
	$(CARGO) check --all-targets --target $(MACOS_TARGET)

## The sample student crate (fixtures/student-crate): builds ipckit with
## `default-features = false, features = ["conformance"]` in a target directory
## of its own and runs the tests `conformance_tests!` made (.ci/run runs it).
student-crate:
	cd fixtures/student-crate && CARGO_TARGET_DIR=$(CURDIR)/target/student-crate $(CARGO) test

## The side-by-side benchmarks (release build; a few minutes): a table on stdout.
bench:
	$(CARGO) build --release --quiet
	./target/release/ipckit bench

## The same as JSON, kept in $(BENCH_JSON); then `make bench-table`. It runs under the
## audit: private namespaces (no one else's cleanup can remove the bench's objects) and a
## proof that it left nothing behind.
BENCH_JSON ?= benches/results.json
bench-json:
	$(CARGO) build --release --quiet
	./target/release/ipckit audit --timeout 1800 -- \
		./target/release/ipckit bench --format json --out $(BENCH_JSON)

## Regenerates the README's benchmark tables from $(BENCH_JSON) (never copy them by hand).
bench-table:
	python3 scripts/bench-table.py $(BENCH_JSON) README.md

clean:
	$(CARGO) clean

## Mutation testing of the mechanism modules (not part of `check`; slow: about
## a minute per mutant on 2 cores, so the whole set takes hours; docs/mutants.md
## has the scores and every survivor kept). MUTANTS_FILES narrows it and
## MUTANTS_TESTS picks the test targets, e.g.
## `make mutants MUTANTS_FILES="-f src/frame.rs" MUTANTS_TESTS="--lib --test channel"`.
MUTANTS_MODULES ?= src/process src/channel src/mq src/shm src/sync src/queue.rs src/manager \
	src/pool.rs src/csp.rs src/frame.rs src/pyvalue.rs src/names src/region src/sys.rs
MUTANTS_FILES ?= $(foreach m,$(MUTANTS_MODULES),$(if $(filter %.rs,$(m)),-f $(m),-f '$(m)/*.rs'))
MUTANTS_TESTS ?=
## Mutants run in IPC and mount namespaces of their own (scripts/in-private-ipc.sh):
## a mutant that skips an unlink leaks by design, and nothing it leaks may stay.
## Then scripts/mutants-score.py prints the score per module and fails when a
## mechanism module kills fewer than 90% of its viable mutants.
mutants:
	@$(CARGO) mutants --version >/dev/null 2>&1 || $(CARGO) install cargo-mutants --locked
	@# cargo-mutants exits 2 when mutants were missed and 3 on timeouts: the
	@# score decides those. Anything else (a baseline that fails, a bad
	@# option) stops here, before a stale mutants.out could be scored.
	rc=0; scripts/in-private-ipc.sh nice -n 19 $(CARGO) mutants $(MUTANTS_FILES) --timeout 60 -j 1 --test-tool cargo \
		$(if $(MUTANTS_TESTS),-- $(MUTANTS_TESTS)) || rc=$$?; \
		case $$rc in 0|2|3) ;; *) echo "cargo mutants failed (exit $$rc)"; exit $$rc ;; esac
	scripts/mutants-score.py mutants.out
## The HTML reports in a real browser: headless Chromium (apt-get install
## chromium) loads a class page and a port page and saves screenshots in
## target/html-check/. Fails, rather than skips, when Chromium is missing.
html-check:
	mkdir -p target/html-check
	IPCKIT_REQUIRE_CHROMIUM=1 IPCKIT_SCREENSHOTS=$(CURDIR)/target/html-check \
		$(CARGO) test --test class html_reports_render_in_headless_chromium -- --nocapture
