# dockplan's build and test entry points. `make test` is what CI runs.
GO ?= go
LAB_HOSTS ?= 3

.PHONY: build test unit lab-up lab-down bench fuzz fmt

build:
	$(GO) build -o dockplan .

# vet + race tests with the multi-host lab up. Installs what the lab needs
# when missing (root), starts the lab, runs everything, and takes the lab
# down again even when the tests fail.
test:
	bash lab/install-deps.sh
	$(GO) vet ./...
	$(GO) run ./lab up $(LAB_HOSTS)
	$(GO) test -race -count=1 -timeout 40m ./... ; rc=$$?; $(GO) run ./lab down; exit $$rc

# Unit tests only: no lab needed (integration tests skip, or fail under CI=true).
unit:
	$(GO) vet ./...
	$(GO) test -race -short ./...

lab-up:
	$(GO) run ./lab up $(LAB_HOSTS)

lab-down:
	$(GO) run ./lab down

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./hclspec ./probe

fuzz:
	$(GO) test ./hclspec -run '^$$' -fuzz FuzzDecode -fuzztime 10m -timeout 0

fmt:
	gofmt -l -w .
	$(GO) run . fmt -recursive examples
