/*
 * proxy/admin.h: the admin command layer and its Unix-socket front end (admin.c), and
 * pgflip ctl (ctl.c).
 */
#ifndef PGFLIP_ADMIN_H
#define PGFLIP_ADMIN_H


bool admin_listen(const char *path, char *err, size_t errlen) PROXY_MUSTCHECK;
void admin_close(void);
/* admin_command: runs one command line; returns the JSON reply (caller
 * frees with free()), always an object with "ok". */
char *admin_command(const char *line);

/* ---- ctl.c ------------------------------------------------------------- */

int ctl_main(int argc, char **argv);

#endif
