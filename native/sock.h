/* sock.h — small socket/process syscalls: SO_PEERCRED, execve, sd_notify. -errno returns. */
#ifndef PLEXD_SOCK_H
#define PLEXD_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

int sock_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
/* Replaces the process image (same PID). Unblocks all signals first (the new image must not
 * inherit the runtime's mask); restores the mask and returns -errno when execve fails. */
int sock_execve(const char *path, char *const argv[], char *const envp[]);
/* Sends state as one datagram to the AF_UNIX socket `path` ("@name" = abstract namespace),
 * without blocking. Returns 0 or -errno. */
int sock_sd_notify(const char *path, const char *state, size_t len);

#ifdef __cplusplus
}
#endif
#endif
