// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_config: krayd's settings parser (daemon/core/config.c) on any config file.  The input is
 * the file: it is written to a memfd and read through /proc/self/fd/N, as
 * `krayd --config FILE` reads it, and the file is read again by config_reload(), as on
 * SIGHUP.
 *
 * Oracles: config_load() returns 0 or -EINVAL (a file cannot ask for --help), and when it
 * takes the file, every setting is within the bounds krayd relies on: strings end inside
 * their buffers, counts are in their ranges, the resources list parses, ready-fd (a flag
 * only) is unset, and a reload of the same file succeeds and keeps the same log level.
 *
 * The parser prints why it rejects a file; the stdio stderr is pointed at /dev/null once,
 * at the first input.  File descriptor 2 stays as it is, for the sanitizers' reports.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../common/wire.h"
#include "../../daemon/core/config.h"
#include "../../daemon/core/log.h"
#include "fuzz.h"

static int file_fd = -1;
static char file_path[64];

static void setup(void)
{
	FILE *null = fopen("/dev/null", "we");

	if (null)
		stderr = null;
	file_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (file_fd < 0)
		fuzz_fail("memfd_create", __FILE__, __LINE__);
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
}

static void write_file(const uint8_t *data, size_t size)
{
	size_t done = 0;

	FUZZ_CHECK(ftruncate(file_fd, 0) == 0);
	while (done < size) {
		ssize_t n = pwrite(file_fd, data + done, size - done, (off_t)done);

		FUZZ_CHECK(n > 0);
		done += (size_t)n;
	}
}

#define ENDS(s) FUZZ_CHECK(memchr((s), 0, sizeof(s)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a0[] = "krayd", a1[] = "--config";
	char *argv[] = { a0, a1, file_path, NULL };
	struct config cfg;
	int r, level;

	if (file_fd < 0)
		setup();
	write_file(data, size);

	r = config_load(&cfg, 3, argv);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r)
		return 0;
	ENDS(cfg.socket);
	ENDS(cfg.code_path);
	ENDS(cfg.worker);
	ENDS(cfg.pidfile);
	ENDS(cfg.remove_dir);
	ENDS(cfg.spill_dir);
	ENDS(cfg.metrics);
	ENDS(cfg.resources);
	ENDS(cfg.config);
	FUZZ_CHECK(!strcmp(cfg.config, file_path) && cfg.spill_dir[0]);
	FUZZ_CHECK(cfg.num_cpus >= 1 && cfg.num_cpus <= 4096);
	FUZZ_CHECK(cfg.max_workers >= 1 && cfg.max_workers <= 65536);
	FUZZ_CHECK(cfg.prestart >= 0 && cfg.prestart <= cfg.num_cpus);
	FUZZ_CHECK(cfg.hugepages == 0 || cfg.hugepages == 1);
	FUZZ_CHECK(cfg.kmod == 0 || cfg.kmod == 1);
	FUZZ_CHECK(cfg.inline_max <= (1u << 20));
	FUZZ_CHECK(cfg.log_level >= LOG_ERR && cfg.log_level <= LOG_DEBUG);
	FUZZ_CHECK(cfg.ready_fd == -1 && !cfg.log_level_flag);
	FUZZ_CHECK(wire_parse_resources(cfg.resources, strlen(cfg.resources), NULL) >= 0);

	level = cfg.log_level;
	cfg.log_level = -1;
	FUZZ_CHECK(config_reload(&cfg) == 0 && cfg.log_level == level);
	return 0;
}
