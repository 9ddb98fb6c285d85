/*
 * migrate/snapshot.h: the facts about one schema's tables that planning needs
 * (columns, types, defaults, NOT NULL, constraints, indexes), as a plain
 * struct.
 *
 * The executor fills a Snapshot from the catalog (catalog_read in exec.h);
 * unit tests build one by hand. The planner takes a copy and changes it as it
 * walks the operations, so it describes the physical tables after `start`,
 * with two extra names per table and column:
 *   vname  the name in the NEW version schema (NULL: hidden there),
 *   oname  the name in the OLD version (NULL: not visible to the old version).
 * A snapshot read from the catalog has vname = oname = name, except that
 * pgflip's temporary columns (MIGRATE_TMP_PREFIX) are hidden from both.
 */
#ifndef PGFLIP_MIGRATE_SNAPSHOT_H
#define PGFLIP_MIGRATE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

/* Prefix of every physical column, index and constraint pgflip creates for a
 * version in flight; such names are never shown in a version schema. */
#define MIGRATE_TMP_PREFIX "_pgflip_"
/* PostgreSQL's MaxHeapAttributeNumber. */
#define SNAP_MAX_COLUMNS 1600
/* A schema with more tables than this is not one we plan in memory. */
#define SNAP_MAX_TABLES 100000
#define SNAP_MAX_CONSTRAINTS 10000

typedef struct SnapColumn {
	char *name;     /* physical */
	char *vname;    /* new version name or NULL */
	char *oname;    /* old version name or NULL */
	char *type;     /* as format_type() prints it, or as a migration declared it */
	char *def;      /* default expression or NULL */
	char *comment;
	bool notnull;
	/* new-version default that differs from the physical one (alter_column
	 * default before complete): vdef_set true and vdef the value (NULL: none) */
	bool vdef_set;
	char *vdef;
} SnapColumn;

typedef struct SnapConstraint {
	char *name;
	char type;      /* pg_constraint.contype: p u c f x */
	char **cols;    /* physical column names, in key order */
	size_t ncols;
	char *def;      /* pg_get_constraintdef(), e.g. "CHECK ((length(name) > 3))" */
} SnapConstraint;

typedef struct SnapIndex {
	char *name;
	bool unique;
	bool constraint; /* backs a constraint */
	char *def;       /* pg_get_indexdef() or NULL */
	char **cols;     /* key columns (physical; "" for an expression) */
	size_t ncols;
} SnapIndex;

/* A privilege on a table that its views in a version schema carry (from
 * aclexplode of pg_class.relacl, or of pg_attribute.attacl for a column
 * grant; the default ACL when relacl is NULL). */
typedef struct SnapGrant {
	char *grantee;   /* role name; "" = PUBLIC */
	char *privilege; /* SELECT, INSERT, UPDATE or DELETE */
	char **cols;     /* physical columns of a column-level grant; none: the whole table */
	size_t ncols;
} SnapGrant;

typedef struct SnapTable {
	char *name;     /* physical */
	char *vname;    /* new version name or NULL (dropped) */
	char *oname;    /* old version name or NULL (created by this migration) */
	char replident; /* pg_class.relreplident: d n f i */
	SnapColumn **cols;
	size_t ncols;
	SnapConstraint **cons;
	size_t ncons;
	SnapIndex **idx;
	size_t nidx;
	SnapGrant **grants; /* read from the catalog; none in a simulated snapshot */
	size_t ngrants;
} SnapTable;

typedef struct Snapshot {
	char *schema;
	SnapTable **tables;
	size_t ntables;
	char **usage;    /* roles with USAGE on SCHEMA ("" = PUBLIC), which its version schemas grant too */
	size_t nusage;
} Snapshot;

/* New empty snapshot of SCHEMA, NULL when out of memory. Free with snapshot_free. */
Snapshot *snapshot_new(const char *schema);
void snapshot_free(Snapshot *s);
/* Deep copy, NULL when out of memory. */
Snapshot *snapshot_copy(const Snapshot *s);

/* Adders return the new element (owned by the parent) or NULL when out of
 * memory or past a SNAP_MAX_* bound. Names are copied; vname/oname = name. */
SnapTable *snapshot_add_table(Snapshot *s, const char *name);
SnapColumn *snapshot_add_column(SnapTable *t, const char *name, const char *type, bool notnull, const char *def);
SnapConstraint *snapshot_add_constraint(SnapTable *t, const char *name, char type, const char *const *cols,
					size_t ncols, const char *def);
SnapIndex *snapshot_add_index(SnapTable *t, const char *name, bool unique, bool constraint);
/* Adds a grant (strings copied) to T / a USAGE grantee to S; false when out
 * of memory or past SNAP_MAX_CONSTRAINTS. */
bool snapshot_add_grant(SnapTable *t, const char *grantee, const char *privilege, const char *const *cols,
			size_t ncols);
bool snapshot_add_usage(Snapshot *s, const char *grantee);
/* Column COL of T is renamed TO (NULL: dropped): its column-level grants
 * follow, and a grant left with no column goes, as in the catalog. */
void snapshot_grants_column(SnapTable *t, const char *col, const char *to);
/* Sets X's definition and key columns (copied); false when out of memory. */
bool snapshot_index_define(SnapIndex *x, const char *def, const char *const *cols, size_t ncols);

/* Lookups: by physical name, or by name in the new version (v) / old version (o). */
SnapTable *snapshot_table(const Snapshot *s, const char *name);
SnapTable *snapshot_vtable(const Snapshot *s, const char *vname);
SnapTable *snapshot_otable(const Snapshot *s, const char *oname);
SnapColumn *snapshot_column(const SnapTable *t, const char *name);
SnapColumn *snapshot_vcolumn(const SnapTable *t, const char *vname);
SnapConstraint *snapshot_constraint(const SnapTable *t, const char *name);
/* Table owning index NAME (sets *IDX) or NULL. */
SnapTable *snapshot_index_table(const Snapshot *s, const char *name, SnapIndex **idx);

/* Removers free the element; no-ops when absent. */
void snapshot_remove_constraint(SnapTable *t, const char *name);
void snapshot_remove_index(SnapTable *t, const char *name);
void snapshot_remove_table(Snapshot *s, const SnapTable *t);
void snapshot_remove_column(SnapTable *t, const SnapColumn *c);

/* Replaces *DST with a copy of SRC (NULL allowed). False when out of memory. */
bool snap_set(char **dst, const char *src);

#endif
