/* files: small file-system helpers shared by the store, secrets and sockets. */
#ifndef ESCALON_FILES_H
#define ESCALON_FILES_H

/* mkdir -p of the folder holding path (mode 0755). 0, or -1 with errno. */
int files_mkdir_parent(const char *path);

#endif
