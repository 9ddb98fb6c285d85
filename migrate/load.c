/*
 * migrate/load.c: migration files into a checked jansson tree (see load.h).
 *
 * The field tables below are transcribed from pgroll's schema.json, one table
 * per definition ($defs), and one generic walker checks any tree against them.
 * Rules that span fields (alter_column needs at least one change, sql must not
 * have both down and onComplete, per-type requirements of constraints) are
 * semantic and are checked by the planner, which reports them with the same
 * "operations[N].op" path.
 */
#include "migrate/load.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- field tables (schema.json) ---- */

typedef enum FieldKind {
	FK_STRING,
	FK_BOOL,
	FK_STRING_OR_NULL,
	FK_ENUM,
	FK_OBJECT,
	FK_OBJECT_ARRAY,
	FK_STRING_ARRAY,
	FK_STRING_MAP,
} FieldKind;

typedef struct FieldSpec {
	const char *name;
	FieldKind kind;
	bool required;
	const struct FieldSpec *sub;    /* FK_OBJECT, FK_OBJECT_ARRAY */
	const char *const *values;      /* FK_ENUM */
} FieldSpec;

#define F_END {NULL, FK_STRING, false, NULL, NULL}
#define F_STR(n) {n, FK_STRING, false, NULL, NULL}
#define F_STR_REQ(n) {n, FK_STRING, true, NULL, NULL}
#define F_BOOL(n) {n, FK_BOOL, false, NULL, NULL}
#define F_STR_NULL(n) {n, FK_STRING_OR_NULL, false, NULL, NULL}
#define F_ENUM(n, v) {n, FK_ENUM, false, NULL, v}
#define F_ENUM_REQ(n, v) {n, FK_ENUM, true, NULL, v}
#define F_OBJ(n, s) {n, FK_OBJECT, false, s, NULL}
#define F_OBJ_REQ(n, s) {n, FK_OBJECT, true, s, NULL}
#define F_OBJS(n, s) {n, FK_OBJECT_ARRAY, false, s, NULL}
#define F_OBJS_REQ(n, s) {n, FK_OBJECT_ARRAY, true, s, NULL}
#define F_STRS(n) {n, FK_STRING_ARRAY, false, NULL, NULL}
#define F_STRS_REQ(n) {n, FK_STRING_ARRAY, true, NULL, NULL}
#define F_MAP(n) {n, FK_STRING_MAP, false, NULL, NULL}
#define F_MAP_REQ(n) {n, FK_STRING_MAP, true, NULL, NULL}

static const char *const V_FK_ACTION[] = {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT", NULL};
static const char *const V_MATCH[] = {"SIMPLE", "FULL", "PARTIAL", NULL};
static const char *const V_CONSTRAINT[] = {"unique", "check", "primary_key", "foreign_key", "exclude", NULL};
static const char *const V_CREATE_CONSTRAINT[] = {"unique", "check", "foreign_key", "primary_key", NULL};
static const char *const V_METHOD[] = {"btree", "hash", "gist", "spgist", "gin", "brin", NULL};
static const char *const V_SORT[] = {"ASC", "DESC", NULL};
static const char *const V_NULLS[] = {"FIRST", "LAST", NULL};
static const char *const V_IDENTITY[] = {"ALWAYS", "BY DEFAULT", NULL};

static const FieldSpec S_CHECK[] = {F_STR_REQ("constraint"), F_STR_REQ("name"), F_BOOL("no_inherit"), F_END};
static const FieldSpec S_FK[] = {F_STR_REQ("column"),         F_STR_REQ("name"),     F_STR_REQ("table"),
				 F_ENUM("match_type", V_MATCH), F_ENUM("on_delete", V_FK_ACTION),
				 F_ENUM("on_update", V_FK_ACTION), F_BOOL("deferrable"), F_BOOL("initially_deferred"),
				 F_END};
static const FieldSpec S_TABLE_FK[] = {F_STR_REQ("table"),           F_STRS_REQ("columns"),
				       F_ENUM("match_type", V_MATCH),  F_ENUM("on_update", V_FK_ACTION),
				       F_ENUM("on_delete", V_FK_ACTION), F_STRS("on_delete_set_columns"), F_END};
static const FieldSpec S_IDENTITY[] = {F_STR("sequence_options"), F_ENUM("user_specified_values", V_IDENTITY), F_END};
static const FieldSpec S_GENERATED[] = {F_STR("expression"), F_OBJ("identity", S_IDENTITY), F_END};
static const FieldSpec S_COLUMN[] = {F_OBJ("check", S_CHECK), F_STR("default"),      F_STR_REQ("name"),
				     F_BOOL("nullable"),      F_BOOL("pk"),          F_OBJ("references", S_FK),
				     F_STR_REQ("type"),       F_BOOL("unique"),      F_STR("comment"),
				     F_OBJ("generated", S_GENERATED), F_END};
static const FieldSpec S_EXCLUDE[] = {F_STR("index_method"), F_STR("elements"), F_STR("predicate"), F_END};
static const FieldSpec S_INDEX_PARAMS[] = {F_STR("tablespace"), F_STR("storage_parameters"), F_STRS("include_columns"),
					   F_END};
static const FieldSpec S_CONSTRAINT[] = {F_STR_REQ("name"),
					 F_STRS("columns"),
					 F_ENUM_REQ("type", V_CONSTRAINT),
					 F_BOOL("deferrable"),
					 F_BOOL("initially_deferred"),
					 F_BOOL("nulls_not_distinct"),
					 F_BOOL("no_inherit"),
					 F_STR("check"),
					 F_OBJ("references", S_TABLE_FK),
					 F_OBJ("exclude", S_EXCLUDE),
					 F_OBJ("index_parameters", S_INDEX_PARAMS),
					 F_END};
static const FieldSpec S_OPCLASS[] = {F_STR("name"), F_STRS("params"), F_END};
static const FieldSpec S_INDEX_FIELD[] = {F_STR_REQ("column"), F_STR("collate"), F_ENUM("sort", V_SORT),
					  F_OBJ("opclass", S_OPCLASS), F_ENUM("nulls", V_NULLS), F_END};
static const FieldSpec S_UNIQUE[] = {F_STR_REQ("name"), F_END};
static const FieldSpec S_REPLICA[] = {F_STR_REQ("index"), F_STR_REQ("type"), F_END};

static const FieldSpec S_OP_ADD_COLUMN[] = {F_OBJ_REQ("column", S_COLUMN), F_STR_REQ("table"), F_STR("up"), F_END};
static const FieldSpec S_OP_RENAME_COLUMN[] = {F_STR_REQ("table"), F_STR_REQ("from"), F_STR_REQ("to"), F_END};
static const FieldSpec S_OP_ALTER_COLUMN[] = {F_OBJ("check", S_CHECK),  F_STR_REQ("column"),   F_STR_REQ("down"),
					      F_STR_NULL("default"),    F_BOOL("nullable"),    F_OBJ("references", S_FK),
					      F_STR_REQ("table"),       F_STR("type"),         F_OBJ("unique", S_UNIQUE),
					      F_STR_NULL("comment"),    F_STR_REQ("up"),       F_END};
static const FieldSpec S_OP_CREATE_INDEX[] = {F_OBJS_REQ("columns", S_INDEX_FIELD), F_STR_REQ("name"),
					      F_STR_REQ("table"), F_STR("predicate"), F_ENUM("method", V_METHOD),
					      F_STR("storage_parameters"), F_BOOL("unique"), F_END};
static const FieldSpec S_OP_CREATE_TABLE[] = {F_OBJS_REQ("columns", S_COLUMN), F_STR_REQ("name"), F_STR("comment"),
					      F_OBJS("constraints", S_CONSTRAINT), F_END};
static const FieldSpec S_OP_DROP_COLUMN[] = {F_STR_REQ("column"), F_STR("down"), F_STR_REQ("table"), F_END};
static const FieldSpec S_OP_DROP_CONSTRAINT[] = {F_STR_REQ("down"), F_STR_REQ("name"), F_STR_REQ("table"),
						 F_STR_REQ("up"), F_END};
static const FieldSpec S_OP_DROP_INDEX[] = {F_STR_REQ("name"), F_END};
static const FieldSpec S_OP_DROP_TABLE[] = {F_STR_REQ("name"), F_END};
static const FieldSpec S_OP_SQL[] = {F_STR("down"), F_STR_REQ("up"), F_BOOL("onComplete"), F_END};
static const FieldSpec S_OP_RENAME_CONSTRAINT[] = {F_STR_REQ("from"), F_STR_REQ("to"), F_STR_REQ("table"), F_END};
static const FieldSpec S_OP_RENAME_TABLE[] = {F_STR_REQ("from"), F_STR_REQ("to"), F_END};
static const FieldSpec S_OP_SET_REPLICA_IDENTITY[] = {F_OBJ_REQ("identity", S_REPLICA), F_STR_REQ("table"), F_END};
static const FieldSpec S_OP_CREATE_CONSTRAINT[] = {F_STR_REQ("table"),
						   F_STR_REQ("name"),
						   F_STRS("columns"),
						   F_ENUM_REQ("type", V_CREATE_CONSTRAINT),
						   F_STR("check"),
						   F_BOOL("no_inherit"),
						   F_OBJ("index_parameters", S_INDEX_PARAMS),
						   F_OBJ("references", S_TABLE_FK),
						   F_MAP_REQ("up"),
						   F_MAP_REQ("down"),
						   F_END};
static const FieldSpec S_OP_DROP_MULTI[] = {F_STR_REQ("table"), F_STR_REQ("name"), F_MAP("up"), F_MAP_REQ("down"),
					    F_END};

static const struct {
	const char *name;
	const FieldSpec *spec;
} OPS[MIGOP__COUNT] = {
	[MIGOP_CREATE_TABLE] = {"create_table", S_OP_CREATE_TABLE},
	[MIGOP_ADD_COLUMN] = {"add_column", S_OP_ADD_COLUMN},
	[MIGOP_DROP_COLUMN] = {"drop_column", S_OP_DROP_COLUMN},
	[MIGOP_RENAME_COLUMN] = {"rename_column", S_OP_RENAME_COLUMN},
	[MIGOP_ALTER_COLUMN] = {"alter_column", S_OP_ALTER_COLUMN},
	[MIGOP_CREATE_INDEX] = {"create_index", S_OP_CREATE_INDEX},
	[MIGOP_DROP_INDEX] = {"drop_index", S_OP_DROP_INDEX},
	[MIGOP_RENAME_TABLE] = {"rename_table", S_OP_RENAME_TABLE},
	[MIGOP_DROP_TABLE] = {"drop_table", S_OP_DROP_TABLE},
	[MIGOP_CREATE_CONSTRAINT] = {"create_constraint", S_OP_CREATE_CONSTRAINT},
	[MIGOP_DROP_CONSTRAINT] = {"drop_constraint", S_OP_DROP_CONSTRAINT},
	[MIGOP_DROP_MULTICOLUMN_CONSTRAINT] = {"drop_multicolumn_constraint", S_OP_DROP_MULTI},
	[MIGOP_RENAME_CONSTRAINT] = {"rename_constraint", S_OP_RENAME_CONSTRAINT},
	[MIGOP_SET_REPLICA_IDENTITY] = {"set_replica_identity", S_OP_SET_REPLICA_IDENTITY},
	[MIGOP_SQL] = {"sql", S_OP_SQL},
};

const char *migop_name(MigOpKind kind)
{
	return (unsigned)kind < MIGOP__COUNT ? OPS[kind].name : "?";
}

/* ---- line side table ---- */

static bool migline_add(MigFile *f, const json_t *parent, const char *key, size_t index, int line)
{
	if (f->nlines >= MIGFILE_MAX_NODES)
		return false;
	if (f->nlines == f->caplines) {
		size_t cap = f->caplines ? f->caplines * 2 : 64;
		MigLine *v = realloc(f->lines, cap * sizeof *v);
		if (!v)
			return false;
		f->lines = v;
		f->caplines = cap;
	}
	MigLine *l = &f->lines[f->nlines];
	l->parent = parent;
	l->key = key ? strdup(key) : NULL;
	if (key && !l->key)
		return false;
	l->index = index;
	l->line = line;
	l->vline = line;
	l->block = false;
	f->nlines++;
	return true;
}

int migfile_line(const MigFile *f, const json_t *parent, const char *key, size_t index)
{
	for (size_t i = 0; i < f->nlines; i++) {
		const MigLine *l = &f->lines[i];
		if (l->parent != parent)
			continue;
		if (key ? (l->key && strcmp(l->key, key) == 0) : (!l->key && l->index == index))
			return l->line;
	}
	return 0;
}

int migfile_text_line(const MigFile *f, const json_t *parent, const char *key, bool *block)
{
	*block = false;
	for (size_t i = 0; i < f->nlines; i++) {
		const MigLine *l = &f->lines[i];
		if (l->parent == parent && l->key && strcmp(l->key, key) == 0) {
			*block = l->block;
			return l->vline;
		}
	}
	return 0;
}

/* ---- YAML → json_t ---- */

typedef struct YamlAnchor {
	char *name;
	json_t *node;
} YamlAnchor;

typedef struct YamlCtx {
	yaml_parser_t parser;
	MigFile *f;
	char *err;
	size_t errlen;
	YamlAnchor *anchors;
	size_t nanchors;
} YamlCtx;

static void yaml_fail(YamlCtx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void yaml_fail(YamlCtx *c, int line, const char *fmt, ...)
{
	if (c->err[0])
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%d: %s", c->f->path, line, msg);
}

static bool yaml_next(YamlCtx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev)) {
		yaml_fail(c, (int)c->parser.problem_mark.line + 1, "YAML syntax: %s",
			  c->parser.problem ? c->parser.problem : "error");
		return false;
	}
	return true;
}

static bool match_word(const char *v, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(v, *words) == 0)
			return true;
	return false;
}

/* A plain scalar's type by the YAML 1.2 core schema; quoted scalars are strings. */
static json_t *yaml_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (ev->data.scalar.tag && strcmp((const char *)ev->data.scalar.tag, YAML_STR_TAG) == 0))
		return json_stringn(v, n);
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	if (match_word(v, nulls))
		return json_null();
	if (match_word(v, trues))
		return json_true();
	if (match_word(v, falses))
		return json_false();
	const char *p = v;
	if (*p == '-' || *p == '+')
		p++;
	bool digits = isdigit((unsigned char)*p);
	while (isdigit((unsigned char)*p))
		p++;
	if (digits && *p == '\0')
		return json_integer(strtoll(v, NULL, 10));
	if (digits || *p == '.') {
		char *end;
		double d = strtod(v, &end);
		if (*end == '\0' && end != v)
			return json_real(d);
	}
	return json_stringn(v, n);
}

static void yaml_anchor(YamlCtx *c, const yaml_char_t *anchor, json_t *node)
{
	if (!anchor || c->nanchors >= 1024)
		return;
	YamlAnchor *a = realloc(c->anchors, (c->nanchors + 1) * sizeof *a);
	if (!a)
		return;
	c->anchors = a;
	a[c->nanchors].name = strdup((const char *)anchor);
	a[c->nanchors].node = json_incref(node);
	c->nanchors++;
}

/* Builds the node that starts with EV (which this function deletes). Returns a
 * new reference or NULL with c->err set. */
static json_t *yaml_node(YamlCtx *c, yaml_event_t *ev, int depth)
{
	int line = (int)ev->start_mark.line + 1;
	json_t *node = NULL;
	if (depth > MIGFILE_MAX_DEPTH) {
		yaml_fail(c, line, "nesting deeper than %d", MIGFILE_MAX_DEPTH);
		yaml_event_delete(ev);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		node = yaml_scalar(ev);
		yaml_anchor(c, ev->data.scalar.anchor, node);
		break;
	case YAML_ALIAS_EVENT:
		for (size_t i = 0; i < c->nanchors; i++)
			if (strcmp(c->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
				node = json_incref(c->anchors[i].node);
		if (!node)
			yaml_fail(c, line, "unknown alias *%s", (const char *)ev->data.alias.anchor);
		break;
	case YAML_SEQUENCE_START_EVENT: {
		node = json_array();
		yaml_char_t *anchor = ev->data.sequence_start.anchor ? (yaml_char_t *)strdup((char *)ev->data.sequence_start.anchor) : NULL;
		for (;;) {
			yaml_event_t item;
			if (!yaml_next(c, &item))
				goto fail;
			if (item.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&item);
				break;
			}
			int iline = (int)item.start_mark.line + 1;
			json_t *v = yaml_node(c, &item, depth + 1);
			if (!v)
				goto fail;
			if (!migline_add(c->f, node, NULL, json_array_size(node), iline)) {
				json_decref(v);
				yaml_fail(c, iline, "too many nodes");
				goto fail;
			}
			json_array_append_new(node, v);
		}
		yaml_anchor(c, anchor, node);
		free(anchor);
		break;
	fail:
		free(anchor);
		json_decref(node);
		node = NULL;
		break;
	}
	case YAML_MAPPING_START_EVENT: {
		node = json_object();
		yaml_char_t *anchor = ev->data.mapping_start.anchor ? (yaml_char_t *)strdup((char *)ev->data.mapping_start.anchor) : NULL;
		for (;;) {
			yaml_event_t k, v;
			if (!yaml_next(c, &k))
				goto mfail;
			if (k.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&k);
				break;
			}
			int kline = (int)k.start_mark.line + 1;
			if (k.type != YAML_SCALAR_EVENT) {
				yaml_fail(c, kline, "mapping keys must be plain strings");
				yaml_event_delete(&k);
				goto mfail;
			}
			char *key = strndup((const char *)k.data.scalar.value, k.data.scalar.length);
			yaml_event_delete(&k);
			if (!key)
				goto mfail;
			if (json_object_get(node, key)) {
				yaml_fail(c, kline, "duplicate key '%s'", key);
				free(key);
				goto mfail;
			}
			if (!yaml_next(c, &v)) {
				free(key);
				goto mfail;
			}
			int vline = (int)v.start_mark.line + 1;
			bool block = v.type == YAML_SCALAR_EVENT && (v.data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
								     v.data.scalar.style == YAML_FOLDED_SCALAR_STYLE);
			json_t *val = yaml_node(c, &v, depth + 1);
			if (!val) {
				free(key);
				goto mfail;
			}
			/* a value on the key's own line reports the key's line; a block value
			 * on the next lines reports the line of the key too, which is what a
			 * reader looks for; where a string's text begins is kept apart (lint
			 * points into raw SQL) */
			if (!migline_add(c->f, node, key, 0, kline)) {
				json_decref(val);
				free(key);
				yaml_fail(c, kline, "too many nodes");
				goto mfail;
			}
			c->f->lines[c->f->nlines - 1].vline = block ? vline + 1 : vline;
			c->f->lines[c->f->nlines - 1].block = block;
			json_object_set_new(node, key, val);
			free(key);
		}
		yaml_anchor(c, anchor, node);
		free(anchor);
		break;
	mfail:
		free(anchor);
		json_decref(node);
		node = NULL;
		break;
	}
	default:
		yaml_fail(c, line, "unexpected YAML event");
		break;
	}
	yaml_event_delete(ev);
	if (!node && !c->err[0])
		yaml_fail(c, line, "out of memory");
	return node;
}

static json_t *yaml_load(MigFile *f, const char *text, size_t len, char *err, size_t errlen)
{
	YamlCtx c = {.f = f, .err = err, .errlen = errlen};
	json_t *root = NULL;
	yaml_event_t ev;
	if (!yaml_parser_initialize(&c.parser)) {
		snprintf(err, errlen, "%s: cannot initialise the YAML parser", f->path);
		return NULL;
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
	bool ok = false;
	int docs = 0;
	for (;;) {
		if (!yaml_next(&c, &ev))
			break;
		yaml_event_type_t t = ev.type;
		int line = (int)ev.start_mark.line + 1;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			ok = true;
			break;
		}
		if (t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			if (++docs > 1) {
				yaml_fail(&c, line, "more than one YAML document");
				break;
			}
			continue;
		}
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		root = yaml_node(&c, &ev, 0);
		if (!root)
			break;
	}
	if (!ok) {
		json_decref(root);
		root = NULL;
	} else if (!root) {
		root = json_null();
	}
	yaml_parser_delete(&c.parser);
	for (size_t i = 0; i < c.nanchors; i++) {
		free(c.anchors[i].name);
		json_decref(c.anchors[i].node);
	}
	free(c.anchors);
	return root;
}

/* ---- checking against the tables ---- */

typedef struct Check {
	const MigFile *f;
	char path[512];
	size_t plen;
	char *err;
	size_t errlen;
} Check;

static bool check_fail(Check *k, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool check_fail(Check *k, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *p = k->plen ? k->path : "(top)";
	if (line > 0)
		snprintf(k->err, k->errlen, "%s:%d: %s: %s", k->f->path, line, p, msg);
	else
		snprintf(k->err, k->errlen, "%s: %s: %s", k->f->path, p, msg);
	return false;
}

static size_t path_push(Check *k, const char *key, long index)
{
	size_t old = k->plen;
	int n;
	if (key)
		n = snprintf(k->path + k->plen, sizeof k->path - k->plen, "%s%s", k->plen ? "." : "", key);
	else
		n = snprintf(k->path + k->plen, sizeof k->path - k->plen, "[%ld]", index);
	if (n > 0 && (size_t)n < sizeof k->path - k->plen)
		k->plen += (size_t)n;
	return old;
}

static void path_pop(Check *k, size_t old)
{
	k->plen = old;
	k->path[old] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

static bool check_object(Check *k, const json_t *obj, const FieldSpec *spec, int line);

static bool check_field(Check *k, const json_t *parent, const FieldSpec *fs, const json_t *v, int line)
{
	switch (fs->kind) {
	case FK_STRING:
		if (!json_is_string(v))
			return check_fail(k, line, "expected string, got %s", json_kind(v));
		return true;
	case FK_STRING_OR_NULL:
		if (!json_is_string(v) && !json_is_null(v))
			return check_fail(k, line, "expected string or null, got %s", json_kind(v));
		return true;
	case FK_BOOL:
		if (!json_is_boolean(v))
			return check_fail(k, line, "expected boolean, got %s", json_kind(v));
		return true;
	case FK_ENUM: {
		if (!json_is_string(v))
			return check_fail(k, line, "expected string, got %s", json_kind(v));
		for (const char *const *e = fs->values; *e; e++)
			if (strcmp(*e, json_string_value(v)) == 0)
				return true;
		char list[256] = "";
		for (const char *const *e = fs->values; *e; e++) {
			strncat(list, list[0] ? ", " : "", sizeof list - strlen(list) - 1);
			strncat(list, *e, sizeof list - strlen(list) - 1);
		}
		return check_fail(k, line, "'%s' is not one of: %s", json_string_value(v), list);
	}
	case FK_OBJECT:
		if (!json_is_object(v))
			return check_fail(k, line, "expected object, got %s", json_kind(v));
		return check_object(k, v, fs->sub, line);
	case FK_STRING_MAP: {
		if (!json_is_object(v))
			return check_fail(k, line, "expected object, got %s", json_kind(v));
		const char *key;
		json_t *item;
		json_object_foreach((json_t *)v, key, item) {
			if (!json_is_string(item)) {
				size_t old = path_push(k, key, 0);
				check_fail(k, migfile_line(k->f, v, key, 0), "expected string, got %s", json_kind(item));
				path_pop(k, old);
				return false;
			}
		}
		return true;
	}
	case FK_STRING_ARRAY:
	case FK_OBJECT_ARRAY: {
		if (!json_is_array(v))
			return check_fail(k, line, "expected array, got %s", json_kind(v));
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item) {
			size_t old = path_push(k, NULL, (long)i);
			int iline = migfile_line(k->f, v, NULL, i);
			bool ok;
			if (fs->kind == FK_STRING_ARRAY)
				ok = json_is_string(item) || check_fail(k, iline, "expected string, got %s", json_kind(item));
			else if (!json_is_object(item))
				ok = check_fail(k, iline, "expected object, got %s", json_kind(item));
			else
				ok = check_object(k, item, fs->sub, iline);
			if (!ok)
				return false;
			path_pop(k, old);
		}
		return true;
	}
	}
	(void)parent;
	return check_fail(k, line, "internal: unknown field kind");
}

static bool check_object(Check *k, const json_t *obj, const FieldSpec *spec, int line)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		const FieldSpec *fs = spec;
		while (fs->name && strcmp(fs->name, key) != 0)
			fs++;
		size_t old = path_push(k, key, 0);
		int vline = migfile_line(k->f, obj, key, 0);
		if (!fs->name)
			return check_fail(k, vline, "unknown field");
		if (!check_field(k, obj, fs, v, vline))
			return false;
		path_pop(k, old);
	}
	for (const FieldSpec *fs = spec; fs->name; fs++) {
		if (fs->required && !json_object_get(obj, fs->name)) {
			size_t old = path_push(k, fs->name, 0);
			check_fail(k, line, "missing required field");
			path_pop(k, old);
			return false;
		}
	}
	return true;
}

static const FieldSpec S_MIGRATION[] = {F_STR("name"), F_STR("version_schema"),
					{"operations", FK_OBJECT_ARRAY, true, NULL, NULL}, F_END};

static bool check_migration(MigFile *f, char *err, size_t errlen)
{
	Check k = {.f = f, .err = err, .errlen = errlen};
	k.path[0] = '\0';
	if (!json_is_object(f->root))
		return check_fail(&k, 1, "expected a mapping with 'operations', got %s", json_kind(f->root));
	const char *key;
	json_t *v;
	json_object_foreach(f->root, key, v) {
		const FieldSpec *fs = S_MIGRATION;
		while (fs->name && strcmp(fs->name, key) != 0)
			fs++;
		size_t old = path_push(&k, key, 0);
		int line = migfile_line(f, f->root, key, 0);
		if (!fs->name)
			return check_fail(&k, line, "unknown field");
		if (fs->kind == FK_STRING && !json_is_string(v))
			return check_fail(&k, line, "expected string, got %s", json_kind(v));
		if (fs->kind == FK_OBJECT_ARRAY && !json_is_array(v))
			return check_fail(&k, line, "expected array, got %s", json_kind(v));
		path_pop(&k, old);
	}
	json_t *ops = json_object_get(f->root, "operations");
	if (!ops) {
		path_push(&k, "operations", 0);
		return check_fail(&k, 1, "missing required field");
	}
	size_t nops = json_array_size(ops);
	f->ops = calloc(nops ? nops : 1, sizeof *f->ops);
	if (!f->ops)
		return check_fail(&k, 0, "out of memory");
	size_t i;
	json_t *item;
	size_t base = path_push(&k, "operations", 0);
	json_array_foreach(ops, i, item) {
		size_t old = path_push(&k, NULL, (long)i);
		int line = migfile_line(f, ops, NULL, i);
		if (!json_is_object(item) || json_object_size(item) != 1)
			return check_fail(&k, line, "expected a mapping with exactly one operation");
		const char *name = json_object_iter_key(json_object_iter(item));
		json_t *body = json_object_iter_value(json_object_iter(item));
		int kind = -1;
		for (int o = 0; o < MIGOP__COUNT; o++)
			if (strcmp(OPS[o].name, name) == 0)
				kind = o;
		path_push(&k, name, 0);
		int bline = migfile_line(f, item, name, 0);
		if (kind < 0)
			return check_fail(&k, bline, "unknown operation");
		if (!json_is_object(body))
			return check_fail(&k, bline, "expected object, got %s", json_kind(body));
		if (!check_object(&k, body, OPS[kind].spec, bline))
			return false;
		f->ops[i].kind = (MigOpKind)kind;
		f->ops[i].body = body;
		f->nops++;
		path_pop(&k, old);
	}
	path_pop(&k, base);
	json_t *n = json_object_get(f->root, "name");
	if (n) {
		free(f->name);
		f->name = strdup(json_string_value(n));
	}
	json_t *vs = json_object_get(f->root, "version_schema");
	if (vs)
		f->version_schema = strdup(json_string_value(vs));
	if (!f->name || !f->name[0])
		return check_fail(&k, 0, "the migration has no name");
	if (strlen(f->name) > 63)
		return check_fail(&k, 0, "migration name '%s' longer than 63 bytes", f->name);
	return true;
}

/* File name without folders and extension. */
static char *name_from_path(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dot = strrchr(b, '.');
	size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
	return strndup(b, n);
}

/* Lines for a JSON file: jansson keeps none, but JSON is YAML's flow style,
 * so libyaml reads the same text with its marks. Its tree replaces jansson's
 * only when both are equal (jansson stays the judge of JSON); otherwise the
 * file simply has no lines. */
static void json_lines(MigFile *f, const char *text, size_t len)
{
	char yerr[256] = "";
	json_t *y = yaml_load(f, text, len, yerr, sizeof yerr);
	if (y && json_equal(y, f->root)) {
		json_decref(f->root);
		f->root = y;
		return;
	}
	json_decref(y);
	for (size_t i = 0; i < f->nlines; i++)
		free(f->lines[i].key);
	f->nlines = 0;
}

bool migfile_parse(const char *path, const char *text, size_t len, bool is_json, MigFile *out, char *err,
		   size_t errlen)
{
	memset(out, 0, sizeof *out);
	err[0] = '\0';
	out->path = strdup(path);
	out->name = name_from_path(path);
	if (!out->path || !out->name) {
		snprintf(err, errlen, "%s: out of memory", path);
		migfile_free(out);
		return false;
	}
	if (len > MIGFILE_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, MIGFILE_MAX_BYTES);
		migfile_free(out);
		return false;
	}
	if (is_json) {
		json_error_t je;
		out->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!out->root) {
			snprintf(err, errlen, "%s:%d: JSON syntax: %s", path, je.line, je.text);
			migfile_free(out);
			return false;
		}
		json_lines(out, text, len);
	} else {
		out->root = yaml_load(out, text, len, err, errlen);
		if (!out->root) {
			migfile_free(out);
			return false;
		}
	}
	if (!check_migration(out, err, errlen)) {
		migfile_free(out);
		return false;
	}
	return true;
}

bool migfile_load(const char *path, MigFile *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: cannot open: %m", path);
		return false;
	}
	char *buf = malloc(MIGFILE_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, MIGFILE_MAX_BYTES + 1, fp) : 0;
	bool rerr = ferror(fp);
	fclose(fp);
	if (!buf || rerr) {
		snprintf(err, errlen, "%s: cannot read", path);
		free(buf);
		return false;
	}
	const char *dot = strrchr(path, '.');
	bool is_json = dot && strcmp(dot, ".json") == 0;
	bool ok = migfile_parse(path, buf, n, is_json, out, err, errlen);
	free(buf);
	return ok;
}

bool migfile_from_json(const char *name, json_t *root, MigFile *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->path = strdup(name);
	out->name = strdup(name);
	out->root = json_incref(root);
	if (!out->path || !out->name || !check_migration(out, err, errlen)) {
		if (!err[0])
			snprintf(err, errlen, "%s: out of memory", name);
		migfile_free(out);
		return false;
	}
	return true;
}

void migfile_free(MigFile *f)
{
	if (!f)
		return;
	free(f->path);
	free(f->name);
	free(f->version_schema);
	json_decref(f->root);
	free(f->ops);
	for (size_t i = 0; i < f->nlines; i++)
		free(f->lines[i].key);
	free(f->lines);
	memset(f, 0, sizeof *f);
}

const char *mj_str(const json_t *obj, const char *key, const char *def)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : def;
}

bool mj_bool(const json_t *obj, const char *key, bool def)
{
	json_t *v = json_object_get(obj, key);
	return json_is_boolean(v) ? json_is_true(v) : def;
}
