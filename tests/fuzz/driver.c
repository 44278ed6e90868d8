// SPDX-License-Identifier: Apache-2.0
/*
 * The plain driver: main() for a fuzz target built without libFuzzer (make
 * test-fuzz-replay).  It runs LLVMFuzzerTestOneInput() once over every file named on the
 * command line and every file in the directories named there (not recursively; names that
 * start with '.' are skipped), in name order, each input in a buffer of exactly its size.
 * Then it prints "fuzz_<name>: N inputs, 0 crashes" and exits 0.
 *
 * There is no crash count to print but 0: a crash (or a failed oracle, which aborts) ends
 * the process, and the driver's last words name the input it was running: from a signal
 * handler for crashes by signal, and from the sanitizers' death callback for their
 * reports.  An unreadable path, or no input at all, is an error (exit 1).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* In the sanitizer runtimes when they are linked in (make test-asan), else NULL. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static const char *prog;
static const char *current; /* the input being run */
static unsigned long inputs;

/* Async-signal-safe: write() only. */
static void put(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0)
		return;
}

static void say_input(void)
{
	if (!current)
		return;
	put(prog);
	put(": crashed on input ");
	put(current);
	put("\n");
}

/* SA_RESETHAND: the signal then does what it would have done. */
static void on_crash(int sig)
{
	(void)sig;
	say_input();
}

static void catch_crashes(void)
{
	static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };
	struct sigaction sa = { .sa_handler = on_crash, .sa_flags = SA_RESETHAND | SA_NODEFER };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(say_input);
}

static int run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		abort();
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0) {
			fprintf(stderr, "%s: %s: short read\n", prog, path);
			free(buf);
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	close(fd);
	current = path;
	LLVMFuzzerTestOneInput(buf, done);
	current = NULL;
	free(buf);
	inputs++;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int run_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, r = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	n = scandir(path, &names, skip_hidden, by_name);
	if (n < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *p;

		if (!r) {
			if (asprintf(&p, "%s/%s", path, names[i]->d_name) < 0)
				abort();
			if (!stat(p, &st) && S_ISREG(st.st_mode))
				r = run_file(p);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	prog = basename(argv[0]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", prog);
		return 1;
	}
	catch_crashes();
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i]))
			return 1;
	if (!inputs) {
		fprintf(stderr, "%s: no inputs\n", prog);
		return 1;
	}
	printf("%s: %lu inputs, 0 crashes\n", prog, inputs);
	return 0;
}
