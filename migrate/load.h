/*
 * migrate/load.h: migration files (pgroll format, YAML or JSON) into a checked
 * jansson tree.
 *
 * One loader for both syntaxes: YAML goes through libyaml's event parser into
 * the same json_t tree that json_load_file() gives for JSON, and a side table
 * remembers the line of every mapping value and sequence item (jansson keeps no
 * positions, and its true/false/null are shared singletons, so lines are keyed
 * by (parent, key or index), not by node). The tree is then checked against
 * data-driven field tables that mirror pgroll's schema.json: wrong types,
 * unknown fields and missing required fields are reported as
 *     FILE:LINE: operations[2].add_column.column.type: expected string
 * After a successful load the planner may read the tree without re-checking
 * types of the fields in the tables.
 */
#ifndef PGFLIP_MIGRATE_LOAD_H
#define PGFLIP_MIGRATE_LOAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* 1 MiB: pgroll migration files are a few KB; a bigger file is a mistake. */
#define MIGFILE_MAX_BYTES ((size_t)1 << 20)
/* Nesting depth of the pgroll format is at most 7; 64 leaves room and stops
 * stack exhaustion on hostile input. */
#define MIGFILE_MAX_DEPTH 64
/* Mapping values + sequence items remembered for line numbers. */
#define MIGFILE_MAX_NODES 200000

typedef enum MigOpKind {
	MIGOP_CREATE_TABLE = 0,
	MIGOP_ADD_COLUMN,
	MIGOP_DROP_COLUMN,
	MIGOP_RENAME_COLUMN,
	MIGOP_ALTER_COLUMN,
	MIGOP_CREATE_INDEX,
	MIGOP_DROP_INDEX,
	MIGOP_RENAME_TABLE,
	MIGOP_DROP_TABLE,
	MIGOP_CREATE_CONSTRAINT,
	MIGOP_DROP_CONSTRAINT,
	MIGOP_DROP_MULTICOLUMN_CONSTRAINT,
	MIGOP_RENAME_CONSTRAINT,
	MIGOP_SET_REPLICA_IDENTITY,
	MIGOP_SQL,
	MIGOP__COUNT
} MigOpKind;

/* The operation's key in a migration file ("add_column"...). */
const char *migop_name(MigOpKind kind);

typedef struct MigLine {
	const json_t *parent;
	char *key;      /* NULL for a sequence item */
	size_t index;
	int line;       /* 1-based */
	int vline;      /* where a string value's text begins (a block scalar's: the line after its key) */
	bool block;     /* the value is a block scalar (| or >): its lines are the file's lines */
} MigLine;

typedef struct MigOp {
	MigOpKind kind;
	json_t *body;   /* borrowed from MigFile.root */
} MigOp;

typedef struct MigFile {
	char *path;            /* as given, for messages */
	char *name;            /* "name" field, else the file name without extension */
	char *version_schema;  /* "version_schema" field or NULL */
	json_t *root;
	MigOp *ops;
	size_t nops;
	MigLine *lines;
	size_t nlines, caplines;
} MigFile;

/*
 * migfile_load: reads PATH (.json as JSON, anything else as YAML), checks it
 * and fills OUT. Returns true on success; on failure returns false with a
 * one-line message "PATH[:LINE]: what" in ERR (ERRLEN bytes) and OUT freed.
 * The caller frees OUT with migfile_free().
 */
bool migfile_load(const char *path, MigFile *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * migfile_parse: as migfile_load() but from TEXT (LEN bytes); PATH only names
 * the migration and its messages; IS_JSON picks the syntax.
 */
bool migfile_parse(const char *path, const char *text, size_t len, bool is_json, MigFile *out, char *err,
		   size_t errlen) __attribute__((warn_unused_result));

/* Builds a MigFile around an already parsed tree (e.g. stored in the state
 * table); takes a reference to ROOT. Same contract as migfile_load(). */
bool migfile_from_json(const char *name, json_t *root, MigFile *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Frees everything OUT owns; accepts NULL and zeroed structs. */
void migfile_free(MigFile *f);

/* Line of PARENT[KEY] (KEY NULL: PARENT[INDEX]) or 0 when unknown. */
int migfile_line(const MigFile *f, const json_t *parent, const char *key, size_t index);

/* The line where the text of string PARENT[KEY] begins, 0 when unknown;
 * *BLOCK tells whether the text's own line breaks are the file's (a YAML
 * block scalar), so that line N of the text is the returned line + N - 1. */
int migfile_text_line(const MigFile *f, const json_t *parent, const char *key, bool *block);

/* Typed readers for a checked tree: the string/bool at KEY or DEF when absent
 * (or JSON null). */
const char *mj_str(const json_t *obj, const char *key, const char *def);
bool mj_bool(const json_t *obj, const char *key, bool def);

#endif
