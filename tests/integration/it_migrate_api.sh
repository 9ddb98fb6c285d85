#!/bin/sh
# The migration API (migrate/api.h) called directly by a C program, as the
# daemon's worker calls it: progress and log hooks, a cancel from another
# thread and the resume, the drop guard (routes, live instances, may_drop),
# history and the shared schema DDL. See tests/integration/it_migrate_api.c.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_db mig_api
"$TOP/$BUILD/tests/it_migrate_api" "host=$PG_SOCK port=$PG_PORT user=postgres dbname=mig_api"
mig_drop_db mig_api
