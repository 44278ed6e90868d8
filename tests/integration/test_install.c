// SPDX-License-Identifier: Apache-2.0
/*
 * `make install` and `make uninstall`, checked the way a packager, a program's author and
 * a node's administrator use them: every file lands under DESTDIR + PREFIX with the right
 * mode; a program built out of the tree with `pkg-config kray` runs a real task through
 * the installed libkray, krayd and kray-worker (so the installed tree finds its own parts);
 * uninstall leaves no file behind; the unit passes `systemd-analyze verify`; the man pages
 * render and document every setting krayd and every command kray has; the example config
 * names every setting and krayd accepts it.  Each test installs into its own temp dir.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(install, .fini = harness_cleanup, .timeout = 120);

#define OUT_MAX 65536
#define MAX_KEYS 64

/* Every file `make install DESTDIR=D PREFIX=/usr` writes, relative to D.  The library's
 * real file is found through its soname link, so that a version bump needs no edit here. */
static const char *const installed[] = {
	"usr/bin/krayd",
	"usr/bin/kray",
	"usr/bin/kray-worker",
	"usr/lib/libkray.so.0",
	"usr/lib/libkray.so",
	"usr/lib/libkray.a",
	"usr/include/kray/kray.h",
	"usr/lib/pkgconfig/kray.pc",
	"usr/share/man/man8/krayd.8",
	"usr/share/man/man1/kray.1",
	"usr/lib/systemd/system/krayd.service",
	"usr/lib/sysusers.d/kray.conf",
	"usr/share/kray/krayd.conf.example",
};
#define NINSTALLED (sizeof(installed) / sizeof(installed[0]))

/*
 * Runs a shell command (printf-style), its stderr joined to its stdout, and keeps the
 * first out_size - 1 bytes of that output in out.  Returns its exit status, or -1 when it
 * was killed by a signal.
 */
__attribute__((format(printf, 3, 4))) static int sh(char *out, size_t out_size, const char *fmt,
						    ...)
{
	char cmd[8192], full[8256], drain[4096];
	size_t n = 0, r;
	va_list ap;
	FILE *p;
	int len, status;

	va_start(ap, fmt);
	len = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert(len > 0 && (size_t)len < sizeof(cmd), "command too long");
	snprintf(full, sizeof(full), "{ %s\n} 2>&1", cmd);
	p = popen(full, "r");
	cr_assert(p, "popen: %s", strerror(errno));
	while (n < out_size - 1 && (r = fread(out + n, 1, out_size - 1 - n, p)) > 0)
		n += r;
	while (fread(drain, 1, sizeof(drain), p) > 0)
		;
	out[n] = 0;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* True when the shell finds cmd. */
static int have(const char *cmd)
{
	char out[256];

	return sh(out, sizeof(out), "command -v %s", cmd) == 0;
}

/* The repository: make test-integration sets KRAY_BIN to <repo>/build/bin. */
static const char *repo_root(void)
{
	static char root[PATH_MAX];
	const char *bin = getenv("KRAY_BIN");
	char path[PATH_MAX + 64];

	cr_assert(bin && *bin, "KRAY_BIN is not set (run through make test-integration)");
	snprintf(path, sizeof(path), "%s/../..", bin);
	cr_assert(realpath(path, root), "realpath %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/Makefile", root);
	cr_assert(!access(path, R_OK), "no Makefile in %s (KRAY_BIN=%s)", root, bin);
	return root;
}

/*
 * make in the repository, with what an outer make (make test-integration) exported taken
 * away: its jobserver descriptors are not open here.
 */
static int run_make(char *out, size_t out_size, const char *target, const char *dest)
{
	return sh(out, out_size,
		  "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C '%s' %s DESTDIR='%s' "
		  "PREFIX=/usr",
		  repo_root(), target, dest);
}

/* A new temp dir in dest (removed by harness_cleanup) with kray installed into it. */
static void install_into(char *dest, size_t size)
{
	static char out[OUT_MAX];
	int rc;

	harness_tmpdir(dest, size);
	rc = run_make(out, sizeof(out), "install", dest);
	cr_assert_eq(rc, 0, "make install DESTDIR=%s PREFIX=/usr exited %d:\n%s", dest, rc, out);
}

/* The whole of a file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
	static char buf[OUT_MAX];
	FILE *f = fopen(path, "re");
	size_t n;

	cr_assert(f, "open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	cr_assert(f, "create %s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* The settings krayd --help lists (from its table in daemon/core/config.c); returns how many. */
static int krayd_keys(char keys[][32])
{
	static char out[OUT_MAX];
	int rc = sh(out, sizeof(out), "'%s/krayd' --help", getenv("KRAY_BIN"));
	int n = 0;

	cr_assert_eq(rc, 0, "krayd --help exited %d:\n%s", rc, out);
	for (char *line = strstr(out, "\n  --"); line && n < MAX_KEYS;
	     line = strstr(line + 1, "\n  --")) {
		size_t len = strcspn(line + 5, " \n");

		cr_assert(len > 0 && len < 32, "odd krayd --help line: %.60s", line + 1);
		memcpy(keys[n], line + 5, len);
		keys[n++][len] = 0;
	}
	cr_assert(n >= 10, "krayd --help lists only %d settings:\n%s", n, out);
	return n;
}

/* ---- install ------------------------------------------------------------------------- */

Test(install, installs_every_file, .timeout = 120)
{
	static char out[OUT_MAX];
	char dest[128], path[PATH_MAX], target[PATH_MAX], target2[PATH_MAX];
	struct stat st;
	ino_t ino;
	ssize_t n;
	int rc;

	install_into(dest, sizeof(dest));
	for (size_t i = 0; i < NINSTALLED; i++) {
		int exe = !strncmp(installed[i], "usr/bin/", 8);

		snprintf(path, sizeof(path), "%s/%s", dest, installed[i]);
		cr_assert(!stat(path, &st), "%s was not installed: %s", path, strerror(errno));
		cr_assert(S_ISREG(st.st_mode), "%s is not a file", path);
		cr_assert_eq(st.st_mode & 07777, exe || strstr(installed[i], ".so") ? 0755 : 0644,
			     "%s has mode %o", path, st.st_mode & 07777);
	}

	/* libkray.so.0 (soname) and libkray.so (for -lkray) name the same real file. */
	snprintf(path, sizeof(path), "%s/usr/lib/libkray.so.0", dest);
	n = readlink(path, target, sizeof(target) - 1);
	cr_assert(n > 0, "%s is not a link", path);
	target[n] = 0;
	cr_assert(!strncmp(target, "libkray.so.0.", 13) && !strchr(target, '/'),
		  "%s -> %s: expected a relative link to libkray.so.0.x.y", path, target);
	snprintf(path, sizeof(path), "%s/usr/lib/libkray.so", dest);
	n = readlink(path, target2, sizeof(target2) - 1);
	cr_assert(n > 0, "%s is not a link", path);
	target2[n] = 0;
	cr_assert_str_eq(target2, target, "libkray.so -> %s, libkray.so.0 -> %s", target2, target);

	/* Paths inside files are for PREFIX (/usr), never for DESTDIR. */
	snprintf(path, sizeof(path), "%s/usr/lib/pkgconfig/kray.pc", dest);
	cr_assert(strstr(slurp(path), "prefix=/usr\n"), "kray.pc:\n%s", slurp(path));
	cr_assert(!strstr(slurp(path), dest) && !strchr(slurp(path), '@'), "kray.pc:\n%s",
		  slurp(path));
	snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/krayd.service", dest);
	cr_assert(strstr(slurp(path), "\nExecStart=/usr/bin/krayd --config /etc/kray/krayd.conf\n"),
		  "krayd.service:\n%s", slurp(path));
	cr_assert(!strstr(slurp(path), dest) && !strchr(slurp(path), '@'), "krayd.service:\n%s",
		  slurp(path));

	/* Installing again replaces the library (a new inode) rather than rewriting the file
	 * that running programs have mapped. */
	snprintf(path, sizeof(path), "%s/usr/lib/%s", dest, target);
	cr_assert(!stat(path, &st), "%s: %s", path, strerror(errno));
	ino = st.st_ino;
	rc = run_make(out, sizeof(out), "install", dest);
	cr_assert_eq(rc, 0, "a second make install exited %d:\n%s", rc, out);
	cr_assert(!stat(path, &st), "%s: %s", path, strerror(errno));
	cr_assert_neq(st.st_ino, ino, "make install rewrote %s in place", path);
}

/* An out-of-tree driver and function library, built with the installed kray.pc, run a
 * real task: the installed libkray starts the installed krayd (<libdir>/../bin/krayd),
 * which starts the installed kray-worker.  Nothing points at the build tree. */
static const char driver_c[] =
	"#define _GNU_SOURCE\n"
	"#include <dlfcn.h>\n"
	"#include <stdio.h>\n"
	"#include <kray/kray.h>\n"
	"\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"	struct kray_config cfg = { .code_path = argv[argc - 1], .num_cpus = 2 };\n"
	"	kray_ref refs[4];\n"
	"	kray_value vals[4];\n"
	"	Dl_info info;\n"
	"	kray *k;\n"
	"\n"
	"	if (dladdr((void *)kray_init, &info))\n"
	"		printf(\"libkray %s\\n\", info.dli_fname);\n"
	"	if (kray_init(&k, &cfg)) {\n"
	"		printf(\"kray_init: %s\\n\", kray_init_errmsg());\n"
	"		return 1;\n"
	"	}\n"
	"	for (int i = 0; i < 4; i++) {\n"
	"		kray_value a = KRAY_V_INT(i);\n"
	"\n"
	"		if (kray_call(k, \"square\", &a, 1, NULL, &refs[i]))\n"
	"			return printf(\"kray_call: %s\\n\", kray_errmsg(k)), 1;\n"
	"	}\n"
	"	if (kray_get(k, refs, 4, 30000, vals))\n"
	"		return printf(\"kray_get: %s\\n\", kray_errmsg(k)), 1;\n"
	"	printf(\"squares\");\n"
	"	for (int i = 0; i < 4; i++) {\n"
	"		printf(\" %lld\", (long long)vals[i].i);\n"
	"		kray_value_clear(&vals[i]);\n"
	"	}\n"
	"	printf(\"\\n\");\n"
	"	kray_release(k, refs, 4);\n"
	"	kray_shutdown(k);\n"
	"	return 0;\n"
	"}\n";

static const char square_c[] = "#include <kray/kray.h>\n"
			       "\n"
			       "KRAY_REMOTE(square, 1)\n"
			       "{\n"
			       "	return kray_return_int(ctx, 0, args[0].i * args[0].i);\n"
			       "}\n";

Test(install, driver_builds_with_pkg_config_and_runs, .timeout = 120)
{
	static char out[OUT_MAX];
	char dest[128], src[256], path[PATH_MAX], want[PATH_MAX], pc[1024], flags[1024];
	int rc;

	cr_assert(have("pkg-config") && have("cc"), "pkg-config and cc are needed (make deps)");
	install_into(dest, sizeof(dest));
	snprintf(src, sizeof(src), "%s/src", dest);
	cr_assert(!mkdir(src, 0700), "mkdir %s: %s", src, strerror(errno));
	snprintf(path, sizeof(path), "%s/driver.c", src);
	write_file(path, driver_c);
	snprintf(path, sizeof(path), "%s/square.c", src);
	write_file(path, square_c);

	/* pkg-config sees the installed tree only, rooted at DESTDIR (the sysroot). */
	snprintf(pc, sizeof(pc),
		 "env -u PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR='%s' "
		 "PKG_CONFIG_LIBDIR='%s/usr/lib/pkgconfig' pkg-config",
		 dest, dest);
	rc = sh(flags, sizeof(flags), "%s --cflags --libs kray", pc);
	cr_assert_eq(rc, 0, "pkg-config --cflags --libs kray exited %d: %s", rc, flags);
	flags[strcspn(flags, "\n")] = 0;
	snprintf(want, sizeof(want), "-I%s/usr/include", dest);
	cr_assert(strstr(flags, want), "pkg-config --cflags: '%s', expected %s", flags, want);
	snprintf(want, sizeof(want), "-L%s/usr/lib", dest);
	cr_assert(strstr(flags, want), "pkg-config --libs: '%s', expected %s", flags, want);

	rc = sh(out, sizeof(out),
		"cd '%s' && cc -std=gnu11 -Wall -Wextra -Werror -o driver driver.c %s && "
		"cc -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -o libsquare.so square.c %s",
		src, flags, flags);
	cr_assert_eq(rc, 0, "building against the installed kray exited %d:\n%s", rc, out);

	/* The build's own krayd and worker must not stand in for the installed ones. */
	rc = sh(out, sizeof(out),
		"cd '%s' && env -u KRAY_KRAYD -u KRAY_WORKER -u KRAY_ADDRESS "
		"LD_LIBRARY_PATH='%s/usr/lib' ./driver '%s/libsquare.so'",
		src, dest, src);
	cr_assert_eq(rc, 0, "the driver exited %d:\n%s", rc, out);
	snprintf(want, sizeof(want), "libkray %s/usr/lib/libkray.so.0\n", dest);
	cr_assert(strstr(out, want), "the driver did not load the installed libkray:\n%s", out);
	cr_assert(strstr(out, "squares 0 1 4 9\n"), "the driver's output:\n%s", out);
}

/* ---- uninstall ----------------------------------------------------------------------- */

static char leftover[PATH_MAX];
static int nleft;

static int note_leftover(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_D && flag != FTW_DP) {
		if (!nleft++)
			snprintf(leftover, sizeof(leftover), "%s", path);
	}
	return 0;
}

Test(install, uninstall_removes_every_file, .timeout = 120)
{
	static char out[OUT_MAX];
	char dest[128], path[PATH_MAX];
	int rc;

	install_into(dest, sizeof(dest));
	rc = run_make(out, sizeof(out), "uninstall", dest);
	cr_assert_eq(rc, 0, "make uninstall exited %d:\n%s", rc, out);
	nleft = 0;
	nftw(dest, note_leftover, 16, FTW_PHYS);
	cr_assert_eq(nleft, 0, "make uninstall left %d files, the first %s", nleft, leftover);
	/* The directories that are kray's own go too. */
	snprintf(path, sizeof(path), "%s/usr/include/kray", dest);
	cr_assert(access(path, F_OK), "%s is still there", path);
	snprintf(path, sizeof(path), "%s/usr/share/kray", dest);
	cr_assert(access(path, F_OK), "%s is still there", path);

	/* A second uninstall finds nothing to remove and still succeeds. */
	rc = run_make(out, sizeof(out), "uninstall", dest);
	cr_assert_eq(rc, 0, "a second make uninstall exited %d:\n%s", rc, out);
}

/* ---- the unit ------------------------------------------------------------------------ */

/*
 * verify checks that ExecStart's binary exists, so it reads a copy of the unit whose
 * ExecStart names the binary inside DESTDIR; and that the man pages of Documentation= are
 * found, so man looks in DESTDIR too.  The sysusers.d file must create the group kray.
 */
Test(install, unit_passes_systemd_analyze_verify, .timeout = 120)
{
	static char out[OUT_MAX];
	char dest[128], unit[PATH_MAX], dir[PATH_MAX], copy[PATH_MAX];
	int rc;

	if (!have("systemd-analyze"))
		cr_skip_test("systemd-analyze is not installed (package systemd)");
	install_into(dest, sizeof(dest));
	snprintf(unit, sizeof(unit), "%s/usr/lib/systemd/system/krayd.service", dest);
	snprintf(dir, sizeof(dir), "%s/verify", dest);
	snprintf(copy, sizeof(copy), "%s/krayd.service", dir);
	cr_assert(!mkdir(dir, 0700), "mkdir %s: %s", dir, strerror(errno));
	rc = sh(out, sizeof(out),
		"sed 's|^ExecStart=/usr/bin/krayd |ExecStart=%s/usr/bin/krayd |' "
		"'%s' > '%s' && grep -q '^ExecStart=%s/usr/bin/krayd ' '%s'",
		dest, unit, copy, dest, copy);
	cr_assert_eq(rc, 0, "rewriting ExecStart of %s:\n%s", unit, out);

	rc = sh(out, sizeof(out), "MANPATH='%s/usr/share/man' systemd-analyze verify '%s'", dest,
		copy);
	cr_assert_eq(rc, 0, "systemd-analyze verify krayd.service exited %d:\n%s", rc, out);
	cr_assert(!strstr(out, "krayd.service"), "systemd-analyze verify warns:\n%s", out);

	if (!have("systemd-sysusers"))
		return;
	rc = sh(out, sizeof(out), "systemd-sysusers --root='%s' --dry-run", dest);
	cr_assert_eq(rc, 0, "systemd-sysusers --dry-run exited %d:\n%s", rc, out);
	cr_assert(strstr(out, "group 'kray'"), "systemd-sysusers would not create kray:\n%s", out);
}

/* ---- man pages and the example config ------------------------------------------------ */

/* Renders a man page to plain text (no warnings allowed); returns the text. */
static const char *render(const char *page)
{
	static char out[OUT_MAX];
	int rc;

	rc = sh(out, sizeof(out), "groff -man -Tutf8 -ww -z '%s'", page);
	cr_assert(rc == 0 && !out[0], "groff warns about %s (exit %d):\n%s", page, rc, out);
	rc = sh(out, sizeof(out), "groff -man -Tascii -P-c -P-b -P-u -rLL=200n '%s'", page);
	cr_assert(rc == 0 && strlen(out) > 500, "groff -Tascii %s exited %d:\n%s", page, rc, out);
	return out;
}

/* True when a line of the rendered page starts with word as a .TP tag (indented 7). */
static int has_entry(const char *text, const char *word)
{
	char tag[64];
	size_t len = (size_t)snprintf(tag, sizeof(tag), "\n       %s", word);

	for (const char *p = strstr(text, tag); p; p = strstr(p + 1, tag))
		if (p[len] == ' ' || p[len] == '\n')
			return 1;
	return 0;
}

Test(install, man_pages_render_and_cover_every_setting_and_command, .timeout = 120)
{
	static char usage[OUT_MAX];
	char keys[MAX_KEYS][32], dest[128], page[PATH_MAX], word[64];
	const char *text;
	int n;

	if (!have("groff"))
		cr_skip_test("groff is not installed (package groff-base): cannot render");
	install_into(dest, sizeof(dest));

	/* krayd(8): a SETTINGS entry for each of krayd's settings. */
	n = krayd_keys(keys);
	snprintf(page, sizeof(page), "%s/usr/share/man/man8/krayd.8", dest);
	text = render(page);
	for (int i = 0; i < n; i++)
		cr_assert(has_entry(text, keys[i]), "krayd.8 has no entry for the setting '%s'",
			  keys[i]);

	/* kray(1): a COMMANDS entry for each command of kray's usage. */
	snprintf(page, sizeof(page), "%s/usr/share/man/man1/kray.1", dest);
	text = render(page);
	sh(usage, sizeof(usage), "'%s/kray'", getenv("KRAY_BIN"));
	n = 0;
	for (char *p = strstr(usage, "kray "); p; p = strstr(p + 1, "kray ")) {
		size_t len = strcspn(p + 5, " \n");

		cr_assert(len > 0 && len < sizeof(word), "odd kray usage: %s", usage);
		snprintf(word, sizeof(word), "%.*s", (int)len, p + 5);
		cr_assert(has_entry(text, word), "kray.1 has no entry for the command '%s'", word);
		n++;
	}
	cr_assert(n >= 3, "kray's usage lists %d commands:\n%s", n, usage);
}

Test(install, example_config_has_every_setting_and_krayd_accepts_it, .timeout = 60)
{
	static char text[OUT_MAX], out[OUT_MAX];
	char keys[MAX_KEYS][32], dir[128], path[PATH_MAX], conf[PATH_MAX], line[64];
	int n, rc;
	FILE *f;

	n = krayd_keys(keys);
	snprintf(path, sizeof(path), "%s/dist/krayd.conf.example", repo_root());
	snprintf(text, sizeof(text), "\n%s", slurp(path));
	for (int i = 0; i < n; i++) {
		if (!strcmp(keys[i], "ready-fd")) /* a flag only */
			continue;
		snprintf(line, sizeof(line), "\n#%s =", keys[i]);
		cr_assert(strstr(text, line) || (line[1] = '\n', strstr(text, line + 1)),
			  "krayd.conf.example has no line '%s = ...'", keys[i]);
	}
	cr_assert(strstr(text, "\nsocket = /run/kray/krayd.sock\n"), "socket is not /run/kray");
	cr_assert(strstr(text, "\nspill-dir = /var/lib/kray/spill\n"),
		  "spill-dir is not /var/lib/kray/spill");

	/* With every example line uncommented, krayd reads the file without complaint
	 * (--help stops it after the settings are read). */
	harness_tmpdir(dir, sizeof(dir));
	snprintf(conf, sizeof(conf), "%s/krayd.conf", dir);
	f = fopen(conf, "we");
	cr_assert(f, "create %s: %s", conf, strerror(errno));
	for (char *s = text + 1, *e; *s; s = e + 1) {
		char key[32] = "";
		int uncomment = 0;

		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		if (sscanf(s, "#%31[a-z-] =", key) == 1)
			for (int i = 0; i < n; i++)
				uncomment |= !strcmp(key, keys[i]);
		fprintf(f, "%.*s\n", (int)(e - s - uncomment), s + uncomment);
		if (!*e)
			break;
	}
	cr_assert(!fclose(f), "write %s", conf);
	rc = sh(out, sizeof(out), "'%s/krayd' --config '%s' --help", getenv("KRAY_BIN"), conf);
	cr_assert_eq(rc, 0, "krayd --config <the example, uncommented> exited %d:\n%s\n%s", rc, out,
		     slurp(conf));
}
