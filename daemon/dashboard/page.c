// SPDX-License-Identifier: Apache-2.0
/*
 * The dashboard's page (index.html beside this file), built into krayd so that it serves
 * no file from disk: no path can reach outside it.  One self-contained HTML file (its
 * script and style inline, no library fetched at run time: krayd may run where the page's
 * browser has no Internet).  The Makefile makes page.o depend on index.html.
 */
#include <stdbool.h>
#include <stddef.h>

#include "dashboard/dashboard.h"

__asm__(".section .rodata\n"
	".global dash_page\n"
	".type dash_page, @object\n"
	"dash_page:\n"
	".incbin \"daemon/dashboard/index.html\"\n"
	".global dash_page_end\n"
	".type dash_page_end, @object\n"
	"dash_page_end:\n"
	".byte 0\n"
	".previous\n");
