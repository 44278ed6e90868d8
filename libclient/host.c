// SPDX-License-Identifier: Apache-2.0
/*
 * An actor's method threads (max_concurrency > 1): the worker's loop thread prepares
 * calls and hands them over; a thread runs one, puts it on the done list and wakes the
 * loop through an eventfd; the loop sends the result.  Unless the constructor shared the
 * connection (kray_ctx_host: then under its lock), only the loop thread touches it, and a
 * method on a thread gets no kray handle (kray_ctx_client() is NULL).
 *
 * A deferred host has no threads: the loop thread runs each method (an async language
 * host starts a coroutine there), and a method that returned KRAY_PENDING goes on the
 * done list when kray_ctx_done() finishes it, from whatever thread.  Either may come
 * first, so both sides meet under the host's lock (returned(), host_finish()).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "worker.h"

struct host {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct call *todo, *todo_tail, *done;
	unsigned busy; /* handed over and not yet collected */
	bool stop;
	int efd;
	void (*run)(struct call *c); /* call_execute(), given by the caller */
	unsigned nthreads;
	pthread_t threads[];
};

void host_stop(struct host *h);

/* Puts a finished call on the done list and wakes the loop; lock held.  Only the first
 * call on an empty list writes the eventfd: host_done() reads it once the list is empty,
 * so a loop that sleeps has seen every call put before its read. */
static void put_done(struct host *h, struct call *c)
{
	uint64_t one = 1;

	c->next = h->done;
	h->done = c;
	if (!c->next && write(h->efd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail short of overflow */
}

/* The call's method returned (lock held): on the done list unless it returned
 * KRAY_PENDING and kray_ctx_done() has not run yet. */
static void returned(struct host *h, struct call *c)
{
	if (c->returned != KRAY_PENDING) {
		c->rc = c->returned;
		c->ns = c->returned_ns;
	} else if (!c->finished) {
		c->pending = true;
		return;
	} /* else kray_ctx_done() ran first and set rc and ns */
	put_done(h, c);
}

void host_finish(struct host *h, struct call *c, int rc, uint64_t ns)
{
	pthread_mutex_lock(&h->lock);
	c->rc = rc == KRAY_PENDING ? -1 : rc;
	c->ns = ns;
	c->finished = true;
	if (c->pending) /* else still inside the method: returned() puts it on the list */
		put_done(h, c);
	pthread_mutex_unlock(&h->lock);
}

void host_wake(struct host *h)
{
	uint64_t one = 1;

	if (write(h->efd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static void *thread_main(void *arg)
{
	struct host *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct call *c;

		while (!h->todo && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		if (!h->todo)
			break;
		c = h->todo;
		h->todo = c->next;
		if (!h->todo)
			h->todo_tail = NULL;
		pthread_mutex_unlock(&h->lock);
		h->run(c);
		pthread_mutex_lock(&h->lock);
		returned(h, c);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct host *host_start(unsigned threads, void (*run)(struct call *c))
{
	struct host *h = calloc(1, sizeof(*h) + threads * sizeof(pthread_t));

	if (!h)
		return NULL;
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->efd < 0) {
		free(h);
		return NULL;
	}
	h->run = run;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	for (unsigned i = 0; i < threads; i++)
		if (!pthread_create(&h->threads[h->nthreads], NULL, thread_main, h))
			h->nthreads++;
	if (threads && !h->nthreads) {
		host_stop(h);
		return NULL;
	}
	return h;
}

void host_submit(struct host *h, struct call *c)
{
	pthread_mutex_lock(&h->lock);
	c->next = NULL;
	if (!h->nthreads) { /* deferred: run here */
		h->busy++;
		pthread_mutex_unlock(&h->lock);
		h->run(c);
		pthread_mutex_lock(&h->lock);
		returned(h, c);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (h->todo_tail)
		h->todo_tail->next = c;
	else
		h->todo = c;
	h->todo_tail = c;
	h->busy++;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

struct call *host_done(struct host *h)
{
	struct call *c;
	uint64_t n;

	pthread_mutex_lock(&h->lock);
	c = h->done;
	if (c) {
		h->done = c->next;
		h->busy--;
	} else if (read(h->efd, &n, sizeof(n)) < 0) {
		/* nothing pending: the counter was already drained */
	}
	pthread_mutex_unlock(&h->lock);
	return c;
}

int host_fd(const struct host *h)
{
	return h->efd;
}

unsigned host_busy(const struct host *h)
{
	return h->busy;
}

void host_stop(struct host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < h->nthreads; i++)
		pthread_join(h->threads[i], NULL);
	close(h->efd);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}
