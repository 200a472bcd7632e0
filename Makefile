# qd — build, test, bench, install.
#   make            build/qd and build/libqdcore.a
#   make check      C core tests + Lua tests + examples (small mode); ends "N passed, N failed"
#   make asan       the same suite built with AddressSanitizer + UBSan (in build-asan/)
#   make bench      benchmarks (bench/RESULTS.md explains the figures)
#   make install PREFIX=/usr/local
BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= gcc
OPT     ?= -O3
# Kernel sets (runtime/core/qd_isa.h): the numerical kernels are compiled once per set and the
# best set the CPU runs is picked at start-up (QD_SIMD=portable|avx2|avx512 forces one), so
# the binary runs on any x86-64 whatever machine built it. NATIVE=1: one set for this
# machine's CPU only (-march=native everywhere; the binary may not run elsewhere).
ARCH    := $(shell uname -m)
ifeq ($(NATIVE),1)
KSETS   := native
BASE_ARCH := -march=native
else ifeq ($(ARCH),x86_64)
KSETS   ?= portable avx2 avx512
else
KSETS   ?= portable
endif
# -Wno-psabi: 64-byte vector values (the portable lane layer, qd_simd.h; gates.c built at
# 8-double width for tests) pass between always-inlined helpers only; GCC's note that such
# a parameter's ABI differs without AVX-512 does not apply
KFLAGS_portable := -Wno-psabi
KFLAGS_avx2     := -march=x86-64-v3 -Wno-psabi
KFLAGS_avx512   := -march=x86-64-v4
KFLAGS_native   := -march=native -Wno-psabi
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
# MPI=1: the distributed build (Open MPI's mpicc, -DQD_MPI; runtime/core/dist*.c, qd.mpi,
# docs/scaling.md). Its objects are not the default build's: give it its own BUILD
# (make MPI=1 BUILD=build-mpi); `make check` on it also runs tests/mpi under mpirun.
ifeq ($(MPI),1)
CC      := mpicc
CFLAGS  += -DQD_MPI
endif
CFLAGS  += -std=c11 $(OPT) $(BASE_ARCH) -g -fopenmp -Wall -Wextra -D_GNU_SOURCE -Iruntime/core $(SANFLAGS)
# OpenBLAS: Debian's OpenMP build when installed (scripts/setup.sh installs it). qd runs
# OpenBLAS at one thread and threads BLAS work itself over fixed blocks (runtime/core/linalg.c),
# calling it from several OpenMP threads at once. The pthread build keeps an idle worker
# spinning in sched_yield that takes a core from qd's threads; the serial build is not safe
# for concurrent calls (seen: 1 and 2 threads gave different zgemm results now and then).
# The OpenMP build shares libgomp's threads with qd and is safe to call concurrently.
BLAS_OMP := $(firstword $(wildcard /usr/lib/*/openblas-openmp/libopenblas.so.0))
BLAS_LIB ?= $(if $(BLAS_OMP),$(BLAS_OMP) -Wl$(comma)-rpath$(comma)$(dir $(BLAS_OMP)),-lopenblas)
comma := ,
LDLIBS  += $(BLAS_LIB) -lm -fopenmp $(SANFLAGS)

# Two layers: runtime/core (libqdcore: C, no Lua — compiled without the Lua include path, so
# a stray #include <lua.h> fails the build) and runtime/lua (the bindings); docs/architecture.md
CORE_SRC := $(wildcard runtime/core/*.c)
# compiled once, for the baseline CPU: state that must exist once (threads, switches, the
# kernel-set choice, the gate registry), I/O, and code whose speed is BLAS's or does not matter
ONCE_SRC := $(addprefix runtime/core/,err.c mem.c parallel.c npy.c linalg.c schedule.c isa.c \
              gate_table.c nn.c feedback.c dist.c dist_state.c)
KERN_SRC := $(filter-out $(ONCE_SRC),$(CORE_SRC))
BIND_SRC := $(wildcard runtime/lua/*.c)
INTERP_SRC := $(wildcard interp/*.c)
TEST_SRC := $(wildcard tests/c/*.c)

ONCE_OBJ := $(ONCE_SRC:%.c=$(BUILD)/%.o)
KSET_OBJ := $(KSETS:%=$(BUILD)/k/%.o)
CORE_OBJ := $(ONCE_OBJ) $(KSET_OBJ) $(BUILD)/k/dispatch.o
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/%.o)
INTERP_OBJ := $(INTERP_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all check asan bench install clean print-ldlibs lint figures figure-runs
all: $(BUILD)/qd $(BUILD)/test_core

HDRS := $(wildcard runtime/core/*.h runtime/lua/*.h interp/*.h tests/c/*.h)
# MPI=1 and the default build compile the same files differently: a stamp naming the choice,
# which every object depends on, makes a switch in one BUILD directory rebuild everything
MPI_STAMP := $(BUILD)/mpi-$(if $(filter 1,$(MPI)),on,off).stamp
HDRS += $(MPI_STAMP)
$(MPI_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/mpi-*.stamp && touch $@

# the Lua headers only for the bindings and the interpreter
lua_flags = $(if $(filter runtime/lua/% interp/%,$<),-Iruntime/lua $(LUA_CFLAGS))
$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(lua_flags) -DQD_STDLIB_INSTALL='"$(PREFIX)/share/qd"' -c $< -o $@

# one kernel set: its objects, partially linked into one (scripts/gen_dispatch.sh renames
# its functions and writes the dispatch table)
define KSET_RULES
$(BUILD)/k/$(1)/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(KFLAGS_$(1)) -DQD_KSET='"$(1)"' -c $$< -o $$@
$(BUILD)/k/$(1).raw.o: $(KERN_SRC:%.c=$(BUILD)/k/$(1)/%.o)
	ld -r -o $$@ $$^
endef
$(foreach S,$(KSETS),$(eval $(call KSET_RULES,$(S))))

$(BUILD)/k/stamp: $(KSETS:%=$(BUILD)/k/%.raw.o) scripts/gen_dispatch.sh
	bash scripts/gen_dispatch.sh $(BUILD)/k $(KSETS)
	@touch $@
$(KSET_OBJ) $(BUILD)/k/dispatch.c: $(BUILD)/k/stamp
	@:
$(BUILD)/k/dispatch.o: $(BUILD)/k/dispatch.c $(HDRS)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libqdcore.a: $(CORE_OBJ)
	@mkdir -p $(BUILD)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/qd: $(INTERP_OBJ) $(BIND_OBJ) $(BUILD)/libqdcore.a
	$(CC) $(CFLAGS) -o $@ $(INTERP_OBJ) $(BIND_OBJ) $(BUILD)/libqdcore.a $(LUA_LIBS) -lreadline -lnettle -lz $(LDLIBS)

$(BUILD)/test_core: $(TEST_OBJ) $(BUILD)/libqdcore.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libqdcore.a $(LDLIBS)

check: all $(BUILD)/w8/test_core
	@QD_BUILD=$(BUILD) QD_KSETS="$(KSETS)" bash tests/run_all.sh

# The distributed tests (tests/mpi/run.sh: qd.mpi, sweeps, distributed state vectors,
# examples' records on 2 ranks) on the MPI build: BUILD itself when MPI=1, else build-mpi
# (made here if needed). make check on an MPI build runs them too.
MPI_BUILD ?= $(if $(filter 1,$(MPI)),$(BUILD),build-mpi)
.PHONY: check-mpi
check-mpi:
	@$(MAKE) --no-print-directory MPI=1 BUILD=$(MPI_BUILD) all
	@bash tests/mpi/run.sh $(MPI_BUILD)/qd

# The C tests with gates.c at AVX-512's register width (8 doubles, QD_GATES_NW) in plain
# vectors, so that a machine without AVX-512 checks that width's kernel logic too (the lane
# layer's 8-wide logic is the portable set's own); one kernel set, run by make check
$(BUILD)/w8/test_core: $(CORE_SRC) $(TEST_SRC) $(HDRS) scripts/gen_dispatch.sh
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/w8 KSETS=portable \
	  KFLAGS_portable="-Wno-psabi -DQD_GATES_NW=8" $(BUILD)/w8/test_core >/dev/null

# the rules docs/architecture.md states that the compiler does not check (also in make check)
lint:
	@bash scripts/lint.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

# The fuzzers (tests/fuzz/, docs/reliability.md) on the ASan/UBSan build for SECONDS
# (make fuzz SECONDS=600 SEED=7); prints calls, errors, files, crashes, hangs
.PHONY: fuzz
SECONDS ?= 120
SEED ?= 1
fuzz:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	bash tests/fuzz/run.sh build-asan/qd $(SECONDS) $(SEED)

bench: all
	@QD_BUILD=$(BUILD) bash bench/run.sh

# The pictures README.md and docs/results.md show: the standard figures (qd plot) of the
# run records committed under docs/figures/records/ (not runs/: .gitignore skips those),
# drawn into docs/figures/<run>/, and the denoiser circuit (needs gnuplot-nox).
# `make figure-runs` re-creates those records (fixed seeds, one thread, ~6 s; kept:
# run.json and the three .npy files the figures read).
FIGURE_RUNS = quddpm_circle quddpm_cluster
figures: $(BUILD)/qd
	@for r in $(FIGURE_RUNS); do $(BUILD)/qd plot docs/figures/records/$$r --out docs/figures/$$r || exit 1; done
	@$(BUILD)/qd docs/figures/circuit.lua docs/figures/denoiser.png

figure-runs: $(BUILD)/qd
	$(BUILD)/qd --threads 1 examples/quddpm_circle.lua --seed 1 --N 100 --epochs 500 \
	  --out docs/figures/records/quddpm_circle --force >/dev/null
	$(BUILD)/qd --threads 1 examples/quddpm_cluster.lua --seed 1 --epochs 500 \
	  --out docs/figures/records/quddpm_cluster --force >/dev/null
	cd docs/figures/records && rm -f */checkpoint.json */generated_test.npy */params.npy

install: $(BUILD)/qd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qd/qd/protocols
	install -m 755 $(BUILD)/qd $(DESTDIR)$(PREFIX)/bin/qd
	cp -r stdlib/qd/. $(DESTDIR)$(PREFIX)/share/qd/qd/

clean:
	rm -rf build build-asan

# test_transport.c includes transport.c a second time (the portable solver, under other names)
$(BUILD)/tests/c/test_transport.o: runtime/core/transport.c

# the link flags, for bench/run.sh (it links bench_core against the same BLAS)
print-ldlibs:
	@echo $(LDLIBS)
