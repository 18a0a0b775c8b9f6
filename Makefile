# mote — one static C binary serving LLMs through the OpenAI HTTP API.
#
#   make                      build ./mote (static, OpenMP, TLS if BearSSL is found)
#   make test                 build and run every test; last line "N passed, N failed, N skipped"
#   make asan                 the same tests under AddressSanitizer + UBSan
#   make CROSS=aarch64-linux-gnu-    cross-build a static aarch64 ./mote
#   make test-qemu            aarch64 unit tests under qemu-aarch64-static
#   make fuzz                 libFuzzer targets (clang) into build/fuzz/
#   make bench                benchmarks (see doc/performance.md)
#   make bench-serve          serving benchmark: 1, 2, 4, 8 concurrent streaming clients
#
# Knobs: STATIC=1|0  THREADS=openmp|pthread  TLS=auto|1|0  BEARSSL_DIR=path
#        CROSS=prefix  EXTRA_CFLAGS=...  BUILD=dir

.DEFAULT_GOAL := all
CROSS   ?=
CC      := $(CROSS)gcc
STATIC  ?= 1
THREADS ?= openmp
TLS     ?= auto
BEARSSL_DIR ?=
VERSION := 0.1.0

MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq (,$(findstring x86_64,$(MACHINE)))
  ARCH := x86_64
else ifneq (,$(findstring aarch64,$(MACHINE)))
  ARCH := aarch64
else
  ARCH := other
endif

BUILD ?= build/$(MACHINE)
GITREV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CFLAGS  := -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
           -iquote src -iquote third_party_vendored_json -MMD -MP \
           -DMOTE_VERSION='"$(VERSION)"' $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(EXTRA_LDFLAGS)
LDLIBS  := -lm

ifeq ($(STATIC),1)
  LDFLAGS += -static
endif

ifeq ($(THREADS),openmp)
  CFLAGS  += -fopenmp -DMOTE_THREADS_OPENMP=1
  LDFLAGS += -fopenmp
else ifeq ($(THREADS),pthread)
  CFLAGS  += -DMOTE_THREADS_PTHREAD=1
else
  $(error THREADS must be openmp or pthread)
endif

# TLS: BearSSL when found (auto), forced (1) or off (0).
ifneq ($(BEARSSL_DIR),)
  BEARSSL_CFLAGS := -I$(BEARSSL_DIR)/inc
  BEARSSL_LIBS   := -L$(BEARSSL_DIR)/build -lbearssl
else
  BEARSSL_LIBS   := -lbearssl
endif
ifeq ($(TLS),auto)
  HAVE_BEARSSL := $(shell echo 'int main(void){br_ssl_server_context c; (void)c; return 0;}' | \
      $(CC) $(BEARSSL_CFLAGS) -include bearssl.h -x c - -o /dev/null $(BEARSSL_LIBS) >/dev/null 2>&1 && echo 1 || echo 0)
else
  HAVE_BEARSSL := $(TLS)
endif
ifeq ($(HAVE_BEARSSL),1)
  CFLAGS += -DMOTE_TLS=1 $(BEARSSL_CFLAGS)
  LDLIBS := $(BEARSSL_LIBS) $(LDLIBS)
else
  CFLAGS += -DMOTE_TLS=0
endif

# Sources: everything in src/ except main.c forms libmote.a; kernels per ISA.
LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) \
           $(wildcard third_party_vendored_json/*.c) src/kernels/ref.c
ifeq ($(ARCH),x86_64)
  LIB_SRC += $(wildcard src/kernels/x86_*.c)
  CFLAGS  += -DMOTE_KERN_X86=1
endif
ifeq ($(ARCH),aarch64)
  LIB_SRC += $(wildcard src/kernels/arm_*.c)
  CFLAGS  += -DMOTE_KERN_ARM=1
endif
LIB_SRC := $(sort $(wildcard $(LIB_SRC)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SH  := $(wildcard tests/test_*.sh)

# Rebuild everything when the flags change (STATIC, THREADS, TLS, CROSS...).
STAMP := $(BUILD)/flags.txt
ifneq ($(file <$(STAMP)),$(CFLAGS) $(LDFLAGS) $(LDLIBS))
  $(shell mkdir -p $(BUILD))
  $(file >$(STAMP),$(CFLAGS) $(LDFLAGS) $(LDLIBS))
endif

# The git revision only reaches version.o, so a commit does not rebuild all.
$(BUILD)/src/version.o: XFLAGS := -DMOTE_GITREV='"$(GITREV)"'
GITSTAMP := $(BUILD)/gitrev.txt
ifneq ($(file <$(GITSTAMP)),$(GITREV))
  $(file >$(GITSTAMP),$(GITREV))
endif
$(BUILD)/src/version.o: $(GITSTAMP)

# Per-ISA kernel flags: only these files are compiled for the ISA; they are
# called only after the run-time CPU check picked their table.
$(BUILD)/src/kernels/x86_avx2.o:   XFLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mavx2 -mfma -mf16c
$(BUILD)/src/kernels/x86_avx512.o:   XFLAGS := $(AVX512_FLAGS)
$(BUILD)/src/kernels/x86_avx512_%.o: XFLAGS := $(AVX512_FLAGS)
$(BUILD)/src/kernels/arm_dotprod.o: XFLAGS := -march=armv8.2-a+dotprod+fp16

.PHONY: all clean test asan test-qemu fuzz bench bench-serve tests mote
all: mote

# ./mote is the last build made (host or CROSS); copied only when it differs.
mote: $(BUILD)/mote
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@; }

$(BUILD)/mote: $(BUILD)/src/main.o $(BUILD)/libmote.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libmote.a: $(LIB_OBJ)
	@rm -f $@
	$(CROSS)ar rcs $@ $^

$(BUILD)/%.o: %.c $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XFLAGS) -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libmote.a tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -iquote tests $(LDFLAGS) -o $@ $< $(BUILD)/libmote.a $(LDLIBS)

tests: $(TEST_BIN) $(BUILD)/mote

# Tests run from the repository root; scripts find the binary in $MOTE_BIN.
test: tests mote
	@MOTE_BIN=$(abspath $(BUILD)/mote) MOTE_BUILD=$(abspath $(BUILD)) ./tests/run.sh $(TEST_BIN) $(TEST_SH)

asan:
	$(MAKE) test BUILD=build/asan STATIC=0 \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined"

# Unit tests (C binaries) of the aarch64 build under qemu; script tests need
# the host binary and run in `make test`.
test-qemu:
	$(MAKE) CROSS=aarch64-linux-gnu- STATIC=1 tests
	@MOTE_QEMU=1 RUNNER="qemu-aarch64-static" ./tests/run.sh \
	    $(TEST_SRC:tests/%.c=build/aarch64-linux-gnu/tests/%)

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c11 -O1 -g -D_GNU_SOURCE -iquote src -iquote third_party_vendored_json -DMOTE_TLS=0 \
               -DMOTE_THREADS_PTHREAD=1 -fsanitize=fuzzer,address,undefined
FUZZ_LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard third_party_vendored_json/*.c) src/kernels/ref.c
fuzz: $(FUZZ_BIN)
build/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRC)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) -lm -pthread

bench: mote
	./tests/bench/bench.sh

bench-serve: mote
	./tests/bench/bench_serve.sh

clean:
	rm -rf build mote

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d
