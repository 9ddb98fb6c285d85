/*
 * migrate/convert.c: SQL DDL into pgroll operations (see convert.h).
 *
 * One pass over the parse tree's statements; each handler either appends
 * operations or answers "unsupported: why", and the statement is then kept
 * whole as a `sql` operation (never half converted). Clause text (types,
 * defaults, CHECK bodies, predicates) is cut from the tokens as written.
 *
 * Two idioms of the ORMs are folded, because their literal translation would
 * do something else in an expand/contract migration:
 *  - Django adds a NOT NULL column with `DEFAULT x` and drops the default in
 *    the next statement, to fill the existing rows: that is add_column with
 *    `up: x` and no default;
 *  - what ALTER TABLE adds to or changes in a table or column that this
 *    file creates (Django's and drizzle's foreign keys, a column added right
 *    after its CREATE TABLE, a default or NOT NULL set on it) goes into that
 *    create_table or add_column: pgflip then builds the object once, in its
 *    final shape, instead of copying a column that no client uses yet.
 */
#include "migrate/convert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "migrate/load.h"
#include "migrate/pgparse.h"
#include "migrate/sqlbuf.h"

/* Tables the ORMs keep their own history in: not part of the schema. */
static const char *const ORM_TABLES[] = {"alembic_version", "django_migrations", "__drizzle_migrations", NULL};

typedef struct Conv {
	PgParse p;
	const PgStmt *s;     /* the statement being converted */
	const char *schema;
	Conversion *out;
	char why[256];       /* why the statement stays raw SQL */
} Conv;

static bool unsupported(Conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool unsupported(Conv *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	return false;
}

static void skip(Conv *c, const char *what)
{
	char line[320];
	snprintf(line, sizeof line, "line %d: skipped %s", pgparse_line(&c->p, c->s->start), what);
	json_array_append_new(c->out->skipped, json_string(line));
}

/* Appends operation {KIND: BODY} (BODY stolen) with NOTE (may be NULL). */
static void op_push(Conv *c, const char *kind, json_t *body, const char *note)
{
	json_array_append_new(json_object_get(c->out->migration, "operations"), json_pack("{s:o}", kind, body));
	json_array_append_new(c->out->notes, note ? json_string(note) : json_null());
}

static const char *placeholder(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "%s %s", CONVERT_PLACEHOLDER, what);
	return buf;
}

/* The table name of RangeVar RV, or NULL (unsupported) when it is qualified
 * with another schema than the one migrated. */
static const char *table_name(Conv *c, const json_t *rv)
{
	const char *sch = json_string_value(json_object_get(rv, "schemaname"));
	const char *rel = json_string_value(json_object_get(rv, "relname"));
	if (sch && strcmp(sch, c->schema) != 0) {
		unsupported(c, "table %s.%s is not in schema %s", sch, rel ? rel : "?", c->schema);
		return NULL;
	}
	return rel;
}

static json_t *strings_of(const json_t *list)
{
	json_t *a = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) json_array_append_new(a, json_string(pgparse_sval(v) ? pgparse_sval(v) : ""));
	return a;
}

/* PostgreSQL's name for an unnamed constraint: TABLE_COLS_SUFFIX. */
static json_t *default_name(const char *table, const json_t *cols, const char *suffix)
{
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_add(&b, table);
	size_t i;
	json_t *v;
	json_array_foreach(cols, i, v) sqlbuf_printf(&b, "_%s", json_string_value(v));
	sqlbuf_printf(&b, "_%s", suffix);
	char *s = sqlbuf_steal(&b);
	if (s && strlen(s) > 63)
		s[63] = '\0';
	json_t *j = json_string(s ? s : suffix);
	free(s);
	return j;
}

static const char *fk_action(const char *code)
{
	switch (code ? code[0] : 'a') {
	case 'r': return "RESTRICT";
	case 'c': return "CASCADE";
	case 'n': return "SET NULL";
	case 'd': return "SET DEFAULT";
	default: return "NO ACTION";
	}
}

/* on_delete / on_update (when not NO ACTION) and match_type (when not
 * SIMPLE) of FK constraint K into reference R. */
static void fk_actions(json_t *r, const json_t *k)
{
	const char *del = fk_action(mj_str(k, "fk_del_action", "")), *upd = fk_action(mj_str(k, "fk_upd_action", ""));
	const char *match = mj_str(k, "fk_matchtype", "s");
	if (strcmp(del, "NO ACTION") != 0)
		json_object_set_new(r, "on_delete", json_string(del));
	if (strcmp(upd, "NO ACTION") != 0)
		json_object_set_new(r, "on_update", json_string(upd));
	if (match[0] == 'f' || match[0] == 'p')
		json_object_set_new(r, "match_type", json_string(match[0] == 'f' ? "FULL" : "PARTIAL"));
}

/* The text after keyword WORD of the clause at LOC (a Constraint's location). */
static char *after_keyword(Conv *c, int loc, const char *word, const char *const *stop)
{
	int k = pgparse_keyword(&c->p, loc, c->s->end, word);
	return k < 0 ? strdup("") : pgparse_clause(&c->p, k + (int)strlen(word), c->s->end, stop);
}

/* ---- constraints ---- */

/* The columns an expression mentions (its ColumnRefs' last names), added to COLS. */
static void column_refs(const json_t *node, json_t *cols)
{
	if (json_is_object(node)) {
		json_t *ref = json_object_get(node, "ColumnRef");
		if (ref) {
			json_t *f = json_object_get(ref, "fields");
			const char *n = pgparse_sval(json_array_get(f, json_array_size(f) - 1));
			bool seen = false;
			size_t i;
			json_t *v;
			json_array_foreach(cols, i, v) seen = seen || (n && strcmp(json_string_value(v), n) == 0);
			if (n && !seen)
				json_array_append_new(cols, json_string(n));
			return;
		}
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)node, k, v) column_refs(v, cols);
	} else if (json_is_array(node)) {
		size_t i;
		json_t *v;
		json_array_foreach(node, i, v) column_refs(v, cols);
	}
}

/* A table-level Constraint K of TABLE as a pgroll Constraint object, or NULL
 * (unsupported). */
static json_t *table_constraint(Conv *c, const char *table, const json_t *k)
{
	const char *ct = mj_str(k, "contype", "");
	json_t *cols = strings_of(json_object_get(k, strcmp(ct, "CONSTR_FOREIGN") == 0 ? "fk_attrs" : "keys"));
	const char *name = json_string_value(json_object_get(k, "conname"));
	int loc = (int)json_integer_value(json_object_get(k, "location"));
	json_t *o = json_object();
	const char *type = NULL, *suffix = NULL;
	if (json_object_get(k, "indexname") || json_object_get(k, "including") || json_object_get(k, "options")) {
		json_decref(o);
		json_decref(cols);
		return unsupported(c, "a constraint with USING INDEX, INCLUDE or WITH"), NULL;
	}
	if (strcmp(ct, "CONSTR_PRIMARY") == 0) {
		type = "primary_key", suffix = "pkey";
	} else if (strcmp(ct, "CONSTR_UNIQUE") == 0) {
		type = "unique", suffix = "key";
		if (json_is_true(json_object_get(k, "nulls_not_distinct")))
			json_object_set_new(o, "nulls_not_distinct", json_true());
	} else if (strcmp(ct, "CONSTR_CHECK") == 0) {
		type = "check", suffix = "check";
		column_refs(json_object_get(k, "raw_expr"), cols);
		char *body = pgparse_parens(&c->p, pgparse_keyword(&c->p, loc, c->s->end, "check"), c->s->end);
		json_object_set_new(o, "check", json_string(body ? body : ""));
		free(body);
	} else if (strcmp(ct, "CONSTR_FOREIGN") == 0) {
		type = "foreign_key", suffix = "fkey";
		const char *rt = table_name(c, json_object_get(k, "pktable"));
		if (!rt) {
			json_decref(o);
			json_decref(cols);
			return NULL;
		}
		json_t *r = json_pack("{s:s, s:o}", "table", rt, "columns", strings_of(json_object_get(k, "pk_attrs")));
		fk_actions(r, k);
		if (json_object_get(k, "fk_del_set_cols"))
			json_object_set_new(r, "on_delete_set_columns", strings_of(json_object_get(k, "fk_del_set_cols")));
		json_object_set_new(o, "references", r);
	} else {
		json_decref(o);
		json_decref(cols);
		return unsupported(c, "constraint type %s", ct), NULL;
	}
	json_t *full = json_pack("{s:o, s:s, s:o}", "name", name ? json_string(name) : default_name(table, cols, suffix),
				 "type", type, "columns", cols);
	json_object_update(full, o);
	json_decref(o);
	if (json_is_true(json_object_get(k, "deferrable")))
		json_object_set_new(full, "deferrable", json_true());
	if (json_is_true(json_object_get(k, "initdeferred")))
		json_object_set_new(full, "initially_deferred", json_true());
	return full;
}

/* ---- columns ---- */

/* Column constraint K (FOREIGN) of column COL of TABLE as a pgroll
 * ForeignKeyReference, or NULL (unsupported). */
static json_t *column_reference(Conv *c, const char *table, const char *col, const json_t *k)
{
	const char *rt = table_name(c, json_object_get(k, "pktable"));
	json_t *pk = json_object_get(k, "pk_attrs");
	if (!rt)
		return NULL;
	if (json_array_size(pk) != 1)
		return unsupported(c, "REFERENCES without the referenced column"), NULL;
	if (json_object_get(k, "fk_del_set_cols"))
		return unsupported(c, "ON DELETE SET NULL/DEFAULT (columns) on a column"), NULL;
	const char *name = json_string_value(json_object_get(k, "conname"));
	json_t *cols = json_pack("[s]", col);
	json_t *r = json_pack("{s:o, s:s, s:s}", "name", name ? json_string(name) : default_name(table, cols, "fkey"),
			      "table", rt, "column", pgparse_sval(json_array_get(pk, 0)));
	fk_actions(r, k);
	json_decref(cols);
	return r;
}

/* One column constraint K into column object COL; false (unsupported) for
 * what a pgroll column cannot say. LAST is the constraint that a following
 * DEFERRABLE / INITIALLY DEFERRED belongs to. */
static bool column_constraint(Conv *c, const char *table, json_t *col, const json_t *k, json_t **last)
{
	const char *ct = mj_str(k, "contype", ""), *cn = mj_str(col, "name", "");
	int loc = (int)json_integer_value(json_object_get(k, "location"));
	json_t *one = json_pack("[s]", cn);
	bool ok = true;
	if (strcmp(ct, "CONSTR_NOTNULL") == 0) {
		json_object_set_new(col, "nullable", json_false());
	} else if (strcmp(ct, "CONSTR_NULL") == 0) {
		json_object_set_new(col, "nullable", json_true());
	} else if (strcmp(ct, "CONSTR_PRIMARY") == 0) {
		json_object_set_new(col, "pk", json_true());
	} else if (strcmp(ct, "CONSTR_UNIQUE") == 0) {
		json_object_set_new(col, "unique", json_true());
	} else if (strcmp(ct, "CONSTR_DEFAULT") == 0) {
		char *d = after_keyword(c, loc, "default", PGPARSE_COLUMN_STOP);
		json_object_set_new(col, "default", json_string(d ? d : ""));
		free(d);
	} else if (strcmp(ct, "CONSTR_CHECK") == 0) {
		const char *name = json_string_value(json_object_get(k, "conname"));
		char *body = pgparse_parens(&c->p, pgparse_keyword(&c->p, loc, c->s->end, "check"), c->s->end);
		json_object_set_new(col, "check", json_pack("{s:o, s:s}", "name", name ? json_string(name) : default_name(table, one, "check"),
							    "constraint", body ? body : ""));
		free(body);
	} else if (strcmp(ct, "CONSTR_FOREIGN") == 0) {
		json_t *r = column_reference(c, table, cn, k);
		ok = r != NULL;
		if (r) {
			json_object_set_new(col, "references", r);
			*last = r;
		}
	} else if (strcmp(ct, "CONSTR_IDENTITY") == 0) {
		const char *when = mj_str(k, "generated_when", "a");
		json_object_set_new(col, "generated",
				    json_pack("{s:{s:s}}", "identity", "user_specified_values", when[0] == 'd' ? "BY DEFAULT" : "ALWAYS"));
		if (json_object_get(k, "options"))
			ok = unsupported(c, "identity sequence options");
	} else if (strcmp(ct, "CONSTR_GENERATED") == 0) {
		char *e = pgparse_parens(&c->p, pgparse_keyword(&c->p, loc, c->s->end, "as"), c->s->end);
		json_object_set_new(col, "generated", json_pack("{s:s}", "expression", e ? e : ""));
		free(e);
	} else if (strcmp(ct, "CONSTR_ATTR_DEFERRABLE") == 0 && *last) {
		json_object_set_new(*last, "deferrable", json_true());
	} else if (strcmp(ct, "CONSTR_ATTR_DEFERRED") == 0 && *last) {
		json_object_set_new(*last, "initially_deferred", json_true());
	} else if (strcmp(ct, "CONSTR_ATTR_NOT_DEFERRABLE") != 0 && strcmp(ct, "CONSTR_ATTR_IMMEDIATE") != 0) {
		ok = unsupported(c, "column constraint %s", ct);
	}
	json_decref(one);
	return ok;
}

/* ColumnDef DEF of TABLE as a pgroll Column object, or NULL (unsupported). */
static json_t *column_def(Conv *c, const char *table, const json_t *def)
{
	const char *name = mj_str(def, "colname", "");
	json_t *tn = json_object_get(def, "typeName");
	if (json_object_get(def, "collClause"))
		return unsupported(c, "column %s has a COLLATE clause", name), NULL;
	char *type = pgparse_clause(&c->p, (int)json_integer_value(json_object_get(tn, "location")), c->s->end,
				    PGPARSE_COLUMN_STOP);
	json_t *col = json_pack("{s:s, s:s}", "name", name, "type", type ? type : "");
	free(type);
	json_t *last = NULL;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(def, "constraints"), i, k) {
		if (!column_constraint(c, table, col, json_object_get(k, "Constraint"), &last)) {
			json_decref(col);
			return NULL;
		}
	}
	/* pgroll's columns are NOT NULL unless nullable: true */
	json_t *nn = json_object_get(col, "nullable");
	if (json_is_true(json_object_get(col, "pk")))
		json_object_del(col, "nullable");
	else if (!nn)
		json_object_set_new(col, "nullable", json_true());
	else if (json_is_false(nn))
		json_object_del(col, "nullable");
	return col;
}

/* ---- CREATE TABLE ---- */

static json_t *find_column(json_t *cols, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(cols, i, v) if (strcmp(mj_str(v, "name", ""), name) == 0) return v;
	return NULL;
}

/* A table-level PRIMARY KEY (a, b) without a name: pk on each column, as
 * pgroll says it (a named one goes to constraints, to keep its name). */
static bool table_pk(Conv *c, json_t *cols, const json_t *k)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(k, "keys"), i, v) {
		json_t *col = find_column(cols, pgparse_sval(v) ? pgparse_sval(v) : "");
		if (!col)
			return unsupported(c, "PRIMARY KEY names an unknown column");
		json_object_del(col, "nullable");
		json_object_set_new(col, "pk", json_true());
	}
	return true;
}

static bool conv_create_table(Conv *c)
{
	const json_t *n = c->s->node;
	const json_t *rv = json_object_get(n, "relation");
	const char *table = table_name(c, rv);
	if (!table)
		return false;
	if (json_object_get(n, "inhRelations") || json_object_get(n, "partspec") || json_object_get(n, "partbound") ||
	    json_object_get(n, "ofTypename") || json_object_get(n, "options") || json_object_get(n, "tablespacename") ||
	    strcmp(mj_str(rv, "relpersistence", "p"), "p") != 0)
		return unsupported(c, "CREATE TABLE with INHERITS, PARTITION, OF, WITH, TABLESPACE, TEMP or UNLOGGED");
	if (json_array_size(json_object_get(n, "tableElts")) == 0)
		return unsupported(c, "CREATE TABLE without columns");
	json_t *cols = json_array(), *cons = json_array();
	size_t i;
	json_t *e;
	bool ok = true;
	json_array_foreach(json_object_get(n, "tableElts"), i, e) {
		json_t *cd = json_object_get(e, "ColumnDef"), *k = json_object_get(e, "Constraint");
		json_t *col = cd ? column_def(c, table, cd) : NULL;
		if (col)
			json_array_append_new(cols, col);
		else if (k && strcmp(mj_str(k, "contype", ""), "CONSTR_PRIMARY") == 0 && !json_object_get(k, "conname"))
			ok = table_pk(c, cols, k);
		else if (k) {
			json_t *tk = table_constraint(c, table, k);
			ok = tk != NULL;
			json_array_append_new(cons, tk);
		} else
			ok = cd ? false : unsupported(c, "CREATE TABLE (LIKE ...)");
		if (!ok)
			break;
	}
	if (ok) {
		json_t *body = json_pack("{s:s, s:o}", "name", table, "columns", cols);
		if (json_array_size(cons))
			json_object_set_new(body, "constraints", cons);
		else
			json_decref(cons);
		const char *note = json_is_true(json_object_get(n, "if_not_exists"))
					   ? "IF NOT EXISTS dropped: the migration fails if the table exists"
					   : NULL;
		op_push(c, "create_table", body, note);
		return true;
	}
	json_decref(cols);
	json_decref(cons);
	return false;
}

/* ---- ALTER TABLE ---- */

/* The text of expression EXPR, from the keyword WORD before it (the
 * expression's own first node may sit inside parentheses). */
static char *expr_after(Conv *c, const json_t *expr, const char *word)
{
	int at = pgparse_min_location(expr);
	int from = pgparse_keyword_before(&c->p, at, word);
	return pgparse_clause(&c->p, from >= 0 ? from : at, c->s->end, NULL);
}

/* The operation body of kind KIND on TABLE made earlier in this output
 * (create_table: name; add_column: table + column.name = COL), or NULL. */
static json_t *earlier(Conv *c, const char *kind, const char *table, const char *col)
{
	size_t i;
	json_t *op;
	json_array_foreach(json_object_get(c->out->migration, "operations"), i, op) {
		json_t *b = json_object_get(op, kind);
		if (!b)
			continue;
		if (strcmp(kind, "create_table") == 0 && strcmp(mj_str(b, "name", ""), table) == 0)
			return b;
		if (strcmp(kind, "add_column") == 0 && strcmp(mj_str(b, "table", ""), table) == 0 &&
		    strcmp(mj_str(json_object_get(b, "column"), "name", ""), col) == 0)
			return b;
	}
	return NULL;
}

/* The column COL made earlier in this output (by create_table or add_column), or NULL. */
static json_t *earlier_column(Conv *c, const char *table, const char *col)
{
	json_t *t = earlier(c, "create_table", table, NULL);
	if (t)
		return find_column(json_object_get(t, "columns"), col);
	json_t *a = earlier(c, "add_column", table, col);
	return a ? json_object_get(a, "column") : NULL;
}

/* Operations of one ALTER TABLE, pushed only when every command converts. */
typedef struct Pending {
	json_t *ops;   /* [{"kind", "body", "note"}] */
} Pending;

static void pend(Pending *pd, const char *kind, json_t *body, const char *note)
{
	json_array_append_new(pd->ops, json_pack("{s:s, s:o, s:o}", "kind", kind, "body", body, "note",
						 note ? json_string(note) : json_null()));
}

static json_t *alter_body(const char *table, const char *col, const char *up, const char *down)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "table", table, "column", col, "up", up, "down", down);
}

static bool at_add_column(Conv *c, Pending *pd, const char *table, const json_t *cmd)
{
	json_t *col = column_def(c, table, json_object_get(json_object_get(cmd, "def"), "ColumnDef"));
	if (!col)
		return false;
	json_t *t = earlier(c, "create_table", table, NULL);
	if (t) {
		json_array_append_new(json_object_get(t, "columns"), col);
		return true;
	}
	json_t *body = json_pack("{s:s, s:o}", "table", table, "column", col);
	const char *note = NULL;
	if (!json_object_get(col, "nullable") && !json_object_get(col, "pk") && !json_object_get(col, "default") &&
	    !json_object_get(col, "generated")) {
		char ph[160];
		json_object_set_new(body, "up", json_string(placeholder(ph, sizeof ph, "the value of the new NOT NULL column for existing rows")));
		note = "a NOT NULL column without default: write up, the value existing rows and old-version writes get";
	}
	pend(pd, "add_column", body, note);
	return true;
}

static bool at_column_default(Conv *c, Pending *pd, const char *table, const char *col, const json_t *def)
{
	char *text = def ? expr_after(c, def, "default") : NULL;
	json_t *added = earlier(c, "add_column", table, col);
	json_t *acol = added ? json_object_get(added, "column") : NULL;
	if (!def && acol && json_object_get(acol, "default")) {
		/* Django's idiom: a default only to fill the existing rows */
		json_object_set(added, "up", json_object_get(acol, "default"));
		json_object_del(acol, "default");
		return true;
	}
	json_t *ecol = earlier_column(c, table, col);
	if (ecol) {
		if (text)
			json_object_set_new(ecol, "default", json_string(text));
		else
			json_object_del(ecol, "default");
	} else {
		json_t *b = alter_body(table, col, col, col);
		json_object_set_new(b, "default", text ? json_string(text) : json_null());
		pend(pd, "alter_column", b, NULL);
	}
	free(text);
	return true;
}

static bool at_nullability(Conv *c, Pending *pd, const char *table, const char *col, bool set_not_null)
{
	json_t *ecol = earlier_column(c, table, col);
	if (ecol) {
		if (set_not_null)
			json_object_del(ecol, "nullable");
		else if (!json_object_get(ecol, "pk"))
			json_object_set_new(ecol, "nullable", json_true());
		return true;
	}
	char ph[200];
	json_t *b = set_not_null ? alter_body(table, col, col, col)
				 : alter_body(table, col, col, placeholder(ph, sizeof ph, "the old version's non-NULL value when the new version writes NULL"));
	json_object_set_new(b, "nullable", set_not_null ? json_false() : json_true());
	pend(pd, "alter_column", b,
	     set_not_null ? "rows where the column is NULL make complete fail (its CHECK does not validate): make up give them a value"
			  : "DROP NOT NULL: write down, what the old version's NOT NULL column gets from a NULL");
	return true;
}

static bool at_type(Conv *c, Pending *pd, const char *table, const char *col, const json_t *def)
{
	json_t *tn = json_object_get(def, "typeName");
	char *type = pgparse_clause(&c->p, (int)json_integer_value(json_object_get(tn, "location")), c->s->end,
				    PGPARSE_COLUMN_STOP);
	json_t *using = json_object_get(def, "raw_default");
	char *up = using ? expr_after(c, using, "using") : NULL;
	SqlBuf b;
	sqlbuf_init(&b);
	if (!up) {
		sqlbuf_add(&b, "CAST(");
		sqlbuf_ident(&b, col);
		sqlbuf_printf(&b, " AS %s)", type ? type : "");
		up = sqlbuf_steal(&b);
	}
	char ph[200];
	json_t *body = alter_body(table, col, up ? up : col, placeholder(ph, sizeof ph, "the old type's value from the new column"));
	json_object_set_new(body, "type", json_string(type ? type : ""));
	pend(pd, "alter_column", body, "type change: write down, the old version's value from the new column (SQL has no inverse of USING)");
	free(type);
	free(up);
	sqlbuf_free(&b);
	return true;
}

static bool at_add_constraint(Conv *c, Pending *pd, const char *table, const json_t *k)
{
	json_t *tk = table_constraint(c, table, k);
	if (!tk)
		return false;
	json_t *t = earlier(c, "create_table", table, NULL);
	if (t) {
		if (!json_object_get(t, "constraints"))
			json_object_set_new(t, "constraints", json_array());
		json_array_append_new(json_object_get(t, "constraints"), tk);
		return true;
	}
	const char *note = NULL;
	if (json_object_get(tk, "deferrable") || json_object_get(tk, "initially_deferred") ||
	    json_object_get(tk, "nulls_not_distinct"))
		note = "DEFERRABLE, INITIALLY DEFERRED and NULLS NOT DISTINCT are not fields of create_constraint: dropped";
	json_object_del(tk, "deferrable");
	json_object_del(tk, "initially_deferred");
	json_object_del(tk, "nulls_not_distinct");
	json_t *up = json_object(), *down = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(tk, "columns"), i, v) {
		json_object_set(up, json_string_value(v), v);
		json_object_set(down, json_string_value(v), v);
	}
	json_object_set_new(tk, "table", json_string(table));
	json_object_set_new(tk, "up", up);
	json_object_set_new(tk, "down", down);
	pend(pd, "create_constraint", tk, note ? note : "rows that break the constraint make complete fail: make up fix them");
	return true;
}

/* One AlterTableCmd. */
static bool at_cmd(Conv *c, Pending *pd, const char *table, const json_t *cmd)
{
	const char *st = mj_str(cmd, "subtype", ""), *col = mj_str(cmd, "name", "");
	const json_t *def = json_object_get(cmd, "def");
	if (strcmp(st, "AT_AddColumn") == 0)
		return at_add_column(c, pd, table, cmd);
	if (strcmp(st, "AT_DropColumn") == 0) {
		pend(pd, "drop_column", json_pack("{s:s, s:s}", "table", table, "column", col), NULL);
		return true;
	}
	if (strcmp(st, "AT_AlterColumnType") == 0)
		return at_type(c, pd, table, col, json_object_get(def, "ColumnDef"));
	if (strcmp(st, "AT_ColumnDefault") == 0)
		return at_column_default(c, pd, table, col, def);
	if (strcmp(st, "AT_SetNotNull") == 0 || strcmp(st, "AT_DropNotNull") == 0)
		return at_nullability(c, pd, table, col, strcmp(st, "AT_SetNotNull") == 0);
	if (strcmp(st, "AT_AddConstraint") == 0)
		return at_add_constraint(c, pd, table, json_object_get(def, "Constraint"));
	if (strcmp(st, "AT_DropConstraint") == 0) {
		pend(pd, "drop_multicolumn_constraint", json_pack("{s:s, s:s, s:{}}", "table", table, "name", col, "down"),
		     "down: each column's old-version value from the new one (the column itself when not given)");
		return true;
	}
	if (strcmp(st, "AT_ValidateConstraint") == 0)
		return true; /* pgflip validates every constraint it adds at complete */
	return unsupported(c, "ALTER TABLE %s", st + 3);
}

static bool conv_alter_table(Conv *c)
{
	const json_t *n = c->s->node;
	if (strcmp(mj_str(n, "objtype", ""), "OBJECT_TABLE") != 0)
		return unsupported(c, "ALTER of a %s", mj_str(n, "objtype", "?") + 7);
	const char *table = table_name(c, json_object_get(n, "relation"));
	if (!table)
		return false;
	Pending pd = {.ops = json_array()};
	/* commands may fold into earlier operations: kept as they were if a
	 * later command of the statement makes it raw SQL */
	json_t *before = json_deep_copy(json_object_get(c->out->migration, "operations"));
	size_t i;
	json_t *cmd;
	bool ok = before != NULL;
	json_array_foreach(json_object_get(n, "cmds"), i, cmd) {
		if (!(ok = ok && at_cmd(c, &pd, table, json_object_get(cmd, "AlterTableCmd"))))
			break;
	}
	if (!ok && before)
		json_object_set(c->out->migration, "operations", before);
	json_decref(before);
	json_t *o;
	json_array_foreach(pd.ops, i, o) {
		if (ok)
			op_push(c, mj_str(o, "kind", ""), json_incref(json_object_get(o, "body")), mj_str(o, "note", NULL));
	}
	json_decref(pd.ops);
	return ok;
}

/* ---- indexes, renames, drops ---- */

/* IndexElem E as a pgroll IndexField, or NULL (an expression: unsupported). */
static json_t *index_field(Conv *c, const json_t *e)
{
	const char *name = mj_str(e, "name", NULL);
	if (!name)
		return unsupported(c, "an index on an expression"), NULL;
	json_t *f = json_pack("{s:s}", "column", name);
	const char *ord = mj_str(e, "ordering", ""), *nulls = mj_str(e, "nulls_ordering", "");
	if (strcmp(ord, "SORTBY_DESC") == 0 || strcmp(ord, "SORTBY_ASC") == 0)
		json_object_set_new(f, "sort", json_string(ord[7] == 'D' ? "DESC" : "ASC"));
	if (strcmp(nulls, "SORTBY_NULLS_FIRST") == 0 || strcmp(nulls, "SORTBY_NULLS_LAST") == 0)
		json_object_set_new(f, "nulls", json_string(nulls[13] == 'F' ? "FIRST" : "LAST"));
	char *oc = json_object_get(e, "opclass") ? pgparse_names(json_object_get(e, "opclass")) : NULL;
	char *co = json_object_get(e, "collation") ? pgparse_names(json_object_get(e, "collation")) : NULL;
	if (oc)
		json_object_set_new(f, "opclass", json_pack("{s:s}", "name", oc));
	if (co)
		json_object_set_new(f, "collate", json_string(co));
	free(oc);
	free(co);
	return f;
}

static bool conv_index(Conv *c)
{
	const json_t *n = c->s->node;
	const char *table = table_name(c, json_object_get(n, "relation"));
	if (!table)
		return false;
	if (json_object_get(n, "indexIncludingParams") || json_object_get(n, "tableSpace") ||
	    json_is_true(json_object_get(n, "nulls_not_distinct")))
		return unsupported(c, "CREATE INDEX with INCLUDE, TABLESPACE or NULLS NOT DISTINCT");
	json_t *fields = json_array(), *names = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(n, "indexParams"), i, e) {
		json_t *f = index_field(c, json_object_get(e, "IndexElem"));
		if (!f) {
			json_decref(fields);
			json_decref(names);
			return false;
		}
		json_array_append(names, json_object_get(f, "column"));
		json_array_append_new(fields, f);
	}
	const char *idx = mj_str(n, "idxname", NULL);
	json_t *body = json_pack("{s:o, s:s, s:o}", "name", idx ? json_string(idx) : default_name(table, names, "idx"),
				 "table", table, "columns", fields);
	json_decref(names);
	const char *m = mj_str(n, "accessMethod", "btree");
	if (strcmp(m, "btree") != 0)
		json_object_set_new(body, "method", json_string(m));
	if (json_is_true(json_object_get(n, "unique")))
		json_object_set_new(body, "unique", json_true());
	if (json_object_get(n, "options")) {
		char *sp = pgparse_parens(&c->p, pgparse_keyword(&c->p, c->s->start, c->s->end, "with"), c->s->end);
		json_object_set_new(body, "storage_parameters", json_string(sp ? sp : ""));
		free(sp);
	}
	if (json_object_get(n, "whereClause")) {
		char *w = after_keyword(c, c->s->start, "where", NULL);
		json_object_set_new(body, "predicate", json_string(w ? w : ""));
		free(w);
	}
	op_push(c, "create_index", body,
		json_is_true(json_object_get(n, "if_not_exists")) ? "IF NOT EXISTS dropped: the migration fails if the index exists"
								   : NULL);
	return true;
}

static bool conv_rename(Conv *c)
{
	const json_t *n = c->s->node;
	const char *rt = mj_str(n, "renameType", ""), *to = mj_str(n, "newname", "");
	const char *table = table_name(c, json_object_get(n, "relation"));
	if (!table)
		return false;
	if (strcmp(rt, "OBJECT_TABLE") == 0)
		op_push(c, "rename_table", json_pack("{s:s, s:s}", "from", table, "to", to), NULL);
	else if (strcmp(rt, "OBJECT_COLUMN") == 0 && strcmp(mj_str(n, "relationType", ""), "OBJECT_TABLE") == 0)
		op_push(c, "rename_column", json_pack("{s:s, s:s, s:s}", "table", table, "from", mj_str(n, "subname", ""), "to", to), NULL);
	else if (strcmp(rt, "OBJECT_TABCONSTRAINT") == 0)
		op_push(c, "rename_constraint", json_pack("{s:s, s:s, s:s}", "table", table, "from", mj_str(n, "subname", ""), "to", to), NULL);
	else
		return unsupported(c, "RENAME of a %s", rt + 7);
	return true;
}

static bool conv_drop(Conv *c)
{
	const json_t *n = c->s->node;
	const char *rt = mj_str(n, "removeType", "");
	bool table = strcmp(rt, "OBJECT_TABLE") == 0;
	if (!table && strcmp(rt, "OBJECT_INDEX") != 0)
		return unsupported(c, "DROP of a %s", rt + 7);
	if (strcmp(mj_str(n, "behavior", ""), "DROP_CASCADE") == 0)
		return unsupported(c, "DROP ... CASCADE (what else it drops is not known here)");
	json_t *objs = json_object_get(n, "objects");
	size_t i;
	json_t *o;
	json_array_foreach(objs, i, o) {
		json_t *items = json_object_get(json_object_get(o, "List"), "items");
		size_t k = json_array_size(items);
		const char *sch = k == 2 ? pgparse_sval(json_array_get(items, 0)) : NULL;
		if (k < 1 || k > 2 || (sch && strcmp(sch, c->schema) != 0))
			return unsupported(c, "DROP of an object outside schema %s", c->schema);
	}
	json_array_foreach(objs, i, o) {
		json_t *items = json_object_get(json_object_get(o, "List"), "items");
		const char *name = pgparse_sval(json_array_get(items, json_array_size(items) - 1));
		op_push(c, table ? "drop_table" : "drop_index", json_pack("{s:s}", "name", name ? name : ""),
			json_is_true(json_object_get(n, "missing_ok")) ? "IF EXISTS dropped: the migration fails if it does not exist" : NULL);
	}
	return true;
}

/* ---- statements ---- */

/* True when statement S is about an ORM's own history table. */
static bool orm_bookkeeping(const PgStmt *s)
{
	const json_t *rv = json_object_get(s->node, "relation");
	const char *rel = json_string_value(json_object_get(rv, "relname"));
	for (const char *const *t = ORM_TABLES; rel && *t; t++)
		if (strcmp(rel, *t) == 0)
			return true;
	return false;
}

static void conv_raw(Conv *c)
{
	char *text = pgparse_stmt_text(&c->p, c->s);
	char note[400];
	snprintf(note, sizeof note, "kept as raw SQL (%s): add a down, or rollback refuses",
		 c->why[0] ? c->why : "no pgroll operation says this");
	op_push(c, "sql", json_pack("{s:s}", "up", text ? text : ""), note);
	free(text);
}

static void conv_stmt(Conv *c)
{
	const char *t = c->s->type;
	c->why[0] = '\0';
	if (strcmp(t, "TransactionStmt") == 0)
		return (void)skip(c, "transaction control: pgflip runs its own transactions");
	if (strcmp(t, "VariableSetStmt") == 0)
		return (void)skip(c, "SET: pgflip sets lock_timeout and search_path itself");
	if (strcmp(t, "ConstraintsSetStmt") == 0)
		return (void)skip(c, "SET CONSTRAINTS");
	if (orm_bookkeeping(c->s))
		return (void)skip(c, "the ORM's own migration history table");
	bool ok;
	if (strcmp(t, "CreateStmt") == 0)
		ok = conv_create_table(c);
	else if (strcmp(t, "AlterTableStmt") == 0)
		ok = conv_alter_table(c);
	else if (strcmp(t, "IndexStmt") == 0)
		ok = conv_index(c);
	else if (strcmp(t, "RenameStmt") == 0)
		ok = conv_rename(c);
	else if (strcmp(t, "DropStmt") == 0)
		ok = conv_drop(c);
	else
		ok = false;
	if (!ok)
		conv_raw(c);
}

bool convert_sql(const char *name, const char *text, const char *schema, Conversion *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Conv c = {.schema = schema ? schema : "public", .out = out};
	char perr[512];
	if (!pgparse_run(&c.p, text, perr, sizeof perr)) {
		snprintf(err, errlen, "%s:%s", name, perr);
		return false;
	}
	out->migration = json_pack("{s:[]}", "operations");
	out->notes = json_array();
	out->skipped = json_array();
	for (size_t i = 0; i < c.p.nstmts; i++) {
		c.s = &c.p.stmts[i];
		conv_stmt(&c);
	}
	pgparse_free(&c.p);
	if (!out->migration || !out->notes || !out->skipped) {
		snprintf(err, errlen, "%s: out of memory", name);
		convert_free(out);
		return false;
	}
	if (json_array_size(json_object_get(out->migration, "operations")) == 0) {
		snprintf(err, errlen, "%s: no statement to convert%s", name,
			 json_array_size(out->skipped) ? " (only transaction control, SET and ORM bookkeeping)" : "");
		convert_free(out);
		return false;
	}
	return true;
}

void convert_free(Conversion *c)
{
	if (!c)
		return;
	json_decref(c->migration);
	json_decref(c->notes);
	json_decref(c->skipped);
	memset(c, 0, sizeof *c);
}

/* ---- output ---- */

/* A string YAML reads back as that string when written plain. */
static bool yaml_plain(const char *s)
{
	static const char *const words[] = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", NULL};
	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || (*p == ' ' && p[1] && p[1] != ' ' && p[1] != '#')))
			return false;
	for (const char *const *w = words; *w; w++)
		if (strcasecmp(s, *w) == 0)
			return false;
	return true;
}

/* A multi-line string that a literal block (|-) keeps exactly: no tab or CR,
 * no blank start, no newline at the end. */
static bool yaml_block(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '\n') && !strchr(s, '\t') && !strchr(s, '\r') && s[0] != ' ' && s[0] != '\n' && s[n - 1] != '\n' &&
	       s[n - 1] != ' ';
}

static void yaml_indent(SqlBuf *b, int n)
{
	for (int i = 0; i < n; i++)
		sqlbuf_add(b, " ");
}

/* Scalar V after "key:" or "- " at INDENT; JSON's double-quoted strings are
 * YAML's too. */
static void yaml_scalar(SqlBuf *b, const json_t *v, int indent)
{
	const char *s = json_string_value(v);
	if (s && s[0] && yaml_plain(s)) {
		sqlbuf_add(b, s);
	} else if (s && yaml_block(s)) {
		sqlbuf_add(b, "|-");
		for (const char *p = s; *p;) {
			const char *e = strchr(p, '\n');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			sqlbuf_add(b, "\n");
			if (n)
				yaml_indent(b, indent + 2);
			sqlbuf_addn(b, p, n);
			p += n + (e ? 1 : 0);
		}
	} else {
		char *j = json_dumps(v, JSON_ENCODE_ANY);
		sqlbuf_add(b, j ? j : "null");
		free(j);
	}
	sqlbuf_add(b, "\n");
}

static void yaml_value(SqlBuf *b, const json_t *v, int indent);

/* Mapping O at INDENT, its first key already placed (after "- "). */
static void yaml_map(SqlBuf *b, const json_t *o, int indent, bool placed)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v) {
		if (!placed)
			yaml_indent(b, indent);
		placed = false;
		sqlbuf_printf(b, "%s:", k);
		if ((json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v))) {
			sqlbuf_add(b, "\n");
			yaml_value(b, v, indent + 2);
		} else if (json_is_object(v) || json_is_array(v)) {
			sqlbuf_add(b, json_is_object(v) ? " {}\n" : " []\n");
		} else {
			sqlbuf_add(b, " ");
			yaml_scalar(b, v, indent);
		}
	}
}

/* A non-empty mapping or sequence V at INDENT, or a scalar. */
static void yaml_value(SqlBuf *b, const json_t *v, int indent)
{
	if (json_is_object(v))
		return yaml_map(b, v, indent, false);
	if (!json_is_array(v))
		return yaml_scalar(b, v, indent);
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item) {
		yaml_indent(b, indent);
		sqlbuf_add(b, "- ");
		if (json_is_object(item) && json_object_size(item))
			yaml_map(b, item, indent + 2, true);
		else
			yaml_scalar(b, item, indent + 2);
	}
}

static void yaml_comment(SqlBuf *b, int indent, const char *text)
{
	yaml_indent(b, indent);
	sqlbuf_add(b, "# ");
	for (const char *p = text; *p; p++)
		sqlbuf_addn(b, *p == '\n' ? " " : p, 1);
	sqlbuf_add(b, "\n");
}

char *convert_yaml(const Conversion *c, const char *source)
{
	SqlBuf b;
	sqlbuf_init(&b);
	char head[512];
	snprintf(head, sizeof head, "converted by pgflip migrate convert from %s", source ? source : "stdin");
	yaml_comment(&b, 0, head);
	size_t i;
	json_t *v;
	json_array_foreach(c->skipped, i, v) yaml_comment(&b, 0, json_string_value(v));
	sqlbuf_add(&b, "operations:\n");
	json_array_foreach(json_object_get(c->migration, "operations"), i, v) {
		const char *note = json_string_value(json_array_get(c->notes, i));
		if (note)
			yaml_comment(&b, 2, note);
		yaml_indent(&b, 2);
		sqlbuf_add(&b, "- ");
		yaml_map(&b, v, 4, true);
	}
	return sqlbuf_steal(&b);
}

char *convert_json(const Conversion *c)
{
	char *s = json_dumps(c->migration, JSON_INDENT(2));
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *out = realloc(s, n + 2);
	if (!out) {
		free(s);
		return NULL;
	}
	memcpy(out + n, "\n", 2);
	return out;
}
