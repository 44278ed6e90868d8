# SPDX-License-Identifier: Apache-2.0
# The cluster (issue 7, docs/cluster.md): krayd's node links prove the cluster token with
# HMAC-SHA256 from libcrypto.  Its tests (tests/integration/test_cluster.c) and benchmark
# (bench/bench_cluster.c) are picked up by the main Makefile's wildcards; both make their
# own network namespaces and need root (they skip, saying so, without it).
LDLIBS_DAEMON += -lcrypto

# The benchmarks make their network namespaces with the tests' helper, and start their
# nodes with bench/bench_nodes.c.
$(O)/bench/bench_cluster $(O)/bench/bench_broadcast $(O)/bench/bench_lazy_remote: $(O)/bench/%: bench/%.c \
			 bench/bench_nodes.c bench/bench_nodes.h tests/integration/netns.c \
			 $(BENCH_LIB:%.c=$(O)/%.o) $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< bench/bench_nodes.c tests/integration/netns.c \
		$(BENCH_LIB:%.c=$(O)/%.o) -L$(O)/lib -lkray $(RPATH) -lm

# The scale benchmark speaks the node protocol itself (the token's HMAC from libcrypto).
# Its simulated nodes (bench/sim/simnode.c) serve test_simnode too.
$(O)/bench/bench_scale: bench/bench_scale.c bench/sim/simnode.c bench/sim/simnode.h \
			$(BENCH_LIB:%.c=$(O)/%.o) $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ bench/bench_scale.c bench/sim/simnode.c $(BENCH_LIB:%.c=$(O)/%.o) \
		-L$(O)/lib -lkray $(RPATH) -lcrypto -lm -lpthread

# test_xfer and test_cluster_pull speak the node protocol themselves too (the token's
# HMAC from libcrypto).
NODE_TESTS := $(O)/tests/integration/test_xfer $(O)/tests/integration/test_cluster_pull
$(NODE_TESTS): $(O)/tests/integration/%: tests/integration/%.c $(INTEG_LIB) $(LIBKRAY) \
	       $(COMMON_OBJ) $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(INTEG_LIB) $(SKIPLOG_OBJ) $(COMMON_OBJ) -L$(O)/lib -lkray \
		$(RPATH) -lcriterion -lcrypto

# test_simnode runs bench_scale's simulated nodes against a real head.
$(O)/tests/integration/test_simnode: tests/integration/test_simnode.c bench/sim/simnode.c \
				      bench/sim/simnode.h $(INTEG_LIB) $(LIBKRAY) $(COMMON_OBJ) \
				      $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< bench/sim/simnode.c $(INTEG_LIB) $(SKIPLOG_OBJ) $(COMMON_OBJ) \
		-L$(O)/lib -lkray $(RPATH) -lcriterion -lcrypto
