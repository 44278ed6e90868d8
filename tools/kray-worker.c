// SPDX-License-Identifier: Apache-2.0
/* kray-worker: the C worker host krayd starts for its pool; all the work is in libkray. */
#include <kray/kray.h>

int main(int argc, char **argv)
{
	return kray_worker_main(argc, argv);
}
