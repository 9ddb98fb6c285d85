/* TEMPORARY shim until the token-level scanner lands. */
#include <string.h>
#include <strings.h>
#include "proxy/sqlscan.h"
unsigned sqlscan_text(const char *sql, size_t n, bool scs)
{
	(void)n;
	(void)scs;
	unsigned f = 0;
	if (strcasestr(sql, "search_path") || strcasestr(sql, "set_config"))
		f |= SQLSCAN_PATH | SQLSCAN_SETTINGS;
	if (strcasestr(sql, "reset") || strcasestr(sql, "discard"))
		f |= SQLSCAN_PATH | SQLSCAN_SETTINGS;
	if (strcasestr(sql, "discard all"))
		f |= SQLSCAN_DISCARD_ALL;
	if (strcasestr(sql, "role") || strcasestr(sql, "authorization"))
		f |= SQLSCAN_ROLE;
	if (strncasecmp(sql, "deallocate", 10) == 0)
		f |= SQLSCAN_DEALLOCATE;
	if (strncasecmp(sql, "listen", 6) == 0)
		f |= SQLSCAN_LISTEN;
	return f;
}
