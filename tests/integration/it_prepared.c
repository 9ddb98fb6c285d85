/*
 * it_prepared: protocol-level prepared statements through pgflip in
 * transaction mode, driven with libpq. Prints TAP lines.
 *
 * usage: it_prepared CONNINFO   (pgflip with pool_size=1 and
 *        max_prepared_statements=2; routes app.v1-* = v1, app.v2-* = v2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "tests/integration/it_tap.h"

static PGconn *connect_as(const char *conninfo, const char *app)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s application_name=%s", conninfo, app);
	PGconn *c = PQconnectdb(buf);
	if (PQstatus(c) != CONNECTION_OK) {
		printf("not ok - connect as %s: %s\n", app, PQerrorMessage(c));
		exit(1);
	}
	return c;
}

/* Runs prepared statement NAME with one parameter; returns "col=value" of
 * the first row's first two columns, or the error's SQLSTATE. */
static const char *run(PGconn *c, const char *name, const char *param)
{
	static char out[256];
	const char *values[1] = {param};
	PGresult *r = PQexecPrepared(c, name, param ? 1 : 0, param ? values : NULL, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(out, sizeof(out), "%s=%s", PQfname(r, PQnfields(r) - 1), PQgetvalue(r, 0, PQnfields(r) - 1));
	else if (PQresultStatus(r) == PGRES_COMMAND_OK)
		snprintf(out, sizeof(out), "ok");
	else
		snprintf(out, sizeof(out), "error %s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
	PQclear(r);
	return out;
}

static int prepare(PGconn *c, const char *name, const char *sql)
{
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		printf("    # prepare %s: %s", name, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* "ok", or the error of preparing NAME as SQL: "SQLSTATE message". */
static const char *prepare_result(PGconn *c, const char *name, const char *sql)
{
	static char out[256];
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		snprintf(out, sizeof(out), "ok");
	else
		snprintf(out, sizeof(out), "%s %s", PQresultErrorField(r, PG_DIAG_SQLSTATE),
			 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
	PQclear(r);
	return out;
}

static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}

/* The number of result columns of NAME as the server describes it, -1 on error. */
static int described_columns(PGconn *c, const char *name)
{
	PGresult *r = PQdescribePrepared(c, name);
	int n = PQresultStatus(r) == PGRES_COMMAND_OK ? PQnfields(r) : -1;
	PQclear(r);
	return n;
}

/*
 * A client that was told a statement's result columns (Describe of the
 * statement), then a DDL changes them, then pgflip has to prepare the
 * statement again on a server (here: B's statements evict it, the pool has
 * one server and room for 2): PostgreSQL would refuse the client's own
 * statement with 0A000, and so must pgflip, rather than hand it rows of
 * columns it was not told (postgres.js misreads them). A new statement of the
 * same text runs, with the new columns.
 */
static void shape_changed(PGconn *a, PGconn *b)
{
	tap_check(exec_ok(a, "CREATE TABLE shape_t (a int); INSERT INTO shape_t VALUES (1)"), "shape: table made");
	tap_check(prepare(a, "s", "SELECT * FROM shape_t") && described_columns(a, "s") == 1 && !strcmp(run(a, "s", NULL), "a=1"),
	       "shape: statement s described with 1 column, runs");
	tap_check(exec_ok(a, "DROP TABLE shape_t; CREATE TABLE shape_t (a int, b text); INSERT INTO shape_t VALUES (2, 'x')"),
	       "shape: table made again with 2 columns");
	tap_check(exec_ok(b, "DEALLOCATE ALL") && prepare(b, "e1", "SELECT 1") && prepare(b, "e2", "SELECT 2") && !strcmp(run(b, "e1", NULL), "?column?=1") &&
		       !strcmp(run(b, "e2", NULL), "?column?=2"),
	       "shape: another client's statements take the server's room");
	const char *got = run(a, "s", NULL);
	tap_check(!strcmp(got, "error 0A000"), "shape: s prepared again by pgflip meets the new columns: 0A000 (got %s)", got);
	got = run(a, "s", NULL);
	tap_check(!strcmp(got, "error 0A000"), "shape: and again on the next use, as PostgreSQL (got %s)", got);
	tap_check(described_columns(a, "s") == -1, "shape: a Describe of s is refused too");
	tap_check(exec_ok(a, "SELECT 1"), "shape: the client goes on");
	tap_check(prepare(a, "s2", "SELECT * FROM shape_t") && described_columns(a, "s2") == 2 && !strcmp(run(a, "s2", NULL), "b=x"),
	       "shape: a new statement of the same text runs with 2 columns");
	tap_check(exec_ok(a, "DROP TABLE shape_t"), "shape: table dropped");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: it_prepared CONNINFO\n");
		return 2;
	}
	PGconn *a = connect_as(argv[1], "v1-a");
	PGconn *b = connect_as(argv[1], "v2-b");
	const char *sql = "SELECT * FROM items WHERE id = $1";

	tap_check(prepare(a, "q", sql), "v1 client prepares q");
	tap_check(prepare(b, "q", sql), "v2 client prepares q with the same name and text");
	/* pool_size = 1: both run on the same server connection, one after the other */
	tap_check(!strcmp(run(a, "q", "1"), "name=n1"), "same text under v1 resolves to v1's view (%s)", run(a, "q", "1"));
	tap_check(!strcmp(run(b, "q", "1"), "title=t1"), "same text under v2 resolves to v2's view (%s)", run(b, "q", "1"));
	for (int i = 0; i < 50; i++) {
		if (strcmp(run(a, "q", "2"), "name=n2") || strcmp(run(b, "q", "2"), "title=t2")) {
			tap_check(0, "alternating clients keep their own statement (round %d)", i);
			break;
		}
		if (i == 49)
			tap_check(1, "alternating clients keep their own statement (50 rounds)");
	}

	/* max_prepared_statements = 2, for the server and for each client: a
	 * third statement on the server evicts the least recently used one,
	 * which comes back transparently */
	tap_check(prepare(a, "r", "SELECT name FROM items WHERE id = $1 + 1"), "prepare r");
	tap_check(!strcmp(run(a, "r", "1"), "name=n2"), "r runs (%s)", run(a, "r", "1"));
	tap_check(!strcmp(run(b, "q", "3"), "title=t3"), "v2's q runs after eviction pressure (%s)", run(b, "q", "3"));
	tap_check(!strcmp(run(a, "q", "4"), "name=n4"), "q re-prepared after LRU eviction (%s)", run(a, "q", "4"));
	tap_check(!strcmp(run(a, "r", "1"), "name=n2"), "r re-prepared after LRU eviction (%s)", run(a, "r", "1"));
	/* a client's third statement is refused (987359f) */
	tap_check(!strncmp(prepare_result(a, "s", "SELECT name FROM items WHERE id = $1 + 2"), "53400 ", 6),
	       "a client's third statement: 53400 (%s)", prepare_result(a, "s", "SELECT 2"));

	/* inside a transaction block the refusal fails the transaction, as
	 * any error does on PostgreSQL: the next statement gets 25P02 */
	{
		bool began = exec_ok(a, "BEGIN");
		const char *refused = prepare_result(a, "s", "SELECT 3");
		PGresult *r = PQexec(a, "SELECT 1");
		const char *next = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		tap_check(began && !strncmp(refused, "53400 ", 6) && next && !strcmp(next, "25P02"),
			  "a refused Parse inside BEGIN fails the transaction (%s; then %s)", refused, next ? next : "ok");
		PQclear(r);
		tap_check(exec_ok(a, "ROLLBACK") && !strcmp(run(a, "q", "5"), "name=n5"), "after ROLLBACK the client goes on");
	}

	/* a statement used inside a transaction */
	tap_check(exec_ok(a, "BEGIN") && !strcmp(run(a, "q", "5"), "name=n5") && exec_ok(a, "COMMIT"),
	       "prepared statement inside an explicit transaction");

	/* an error inside the extended protocol: the next request still works */
	tap_check(!strncmp(run(a, "nosuch", "1"), "error 26000", 11), "unknown statement: error 26000 from the server");
	tap_check(!strcmp(run(a, "q", "6"), "name=n6"), "the client goes on after the error");
	tap_check(!strncmp(prepare_result(b, "bad", "SELECT nosuchcolumn FROM items"), "42703 ", 6),
	       "a Parse that fails reports its error (%s)", prepare_result(b, "bad", "SELECT nosuchcolumn FROM items"));
	tap_check(!strncmp(run(b, "bad", "1"), "error 26000", 11), "and prepares nothing (%s)", run(b, "bad", "1"));
	tap_check(!strcmp(run(b, "q", "7"), "title=t7"), "and the client goes on after it");
	tap_check(!strcmp(run(a, "q", "7"), "name=n7"), "so does the other one");
	/* a Parse of a name the client has: refused as PostgreSQL refuses it,
	 * and the client keeps its statement */
	tap_check(!strcmp(prepare_result(a, "q", "SELECT 1"), "42P05 prepared statement \"q\" already exists"),
	       "preparing q again: 42P05 under the client's name (%s)", prepare_result(a, "q", "SELECT 1"));
	tap_check(!strcmp(run(a, "q", "7"), "name=n7"), "q is still the client's first statement");
	tap_check(!strcmp(prepare_result(a, "q", "SELEC 1"), "42601 syntax error at or near \"SELEC\""),
	       "preparing q again with a text that does not parse: the syntax error first (%s)",
	       prepare_result(a, "q", "SELEC 1"));

	/* DEALLOCATE and DISCARD ALL from the client are honoured */
	tap_check(exec_ok(a, "DEALLOCATE q"), "DEALLOCATE q");
	tap_check(!strncmp(run(a, "q", "1"), "error 26000", 11), "q is gone after DEALLOCATE (%s)", run(a, "q", "1"));
	tap_check(!strcmp(run(b, "q", "1"), "title=t1"), "another client's q is untouched");
	tap_check(exec_ok(a, "DEALLOCATE ALL"), "DEALLOCATE ALL");
	tap_check(!strncmp(run(a, "r", "1"), "error 26000", 11), "r is gone after DEALLOCATE ALL");
	tap_check(exec_ok(b, "DISCARD ALL"), "DISCARD ALL");
	tap_check(!strncmp(run(b, "q", "1"), "error 26000", 11), "q is gone after DISCARD ALL");
	tap_check(prepare(b, "q", sql) && !strcmp(run(b, "q", "8"), "title=t8"), "prepare again after DISCARD ALL");

	shape_changed(a, b);

	PQfinish(a);
	PQfinish(b);
	return tap_failures ? 1 : 0;
}
