/* sock.c — see sock.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sock.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sock_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred c;
	socklen_t len = sizeof(c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		return -errno;
	if (len != sizeof(c))
		return -EINVAL;
	*pid = c.pid;
	*uid = c.uid;
	*gid = c.gid;
	return 0;
}

int sock_execve(const char *path, char *const argv[], char *const envp[])
{
	sigset_t all, old;
	sigemptyset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return -EINVAL;
	execve(path, argv, envp);
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -e;
}

int sock_sd_notify(const char *path, const char *state, size_t len)
{
	struct sockaddr_un sa;
	size_t plen = strlen(path);
	socklen_t salen;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (plen < 2 || plen >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@') {
		/* Abstract namespace: leading NUL, the address length counts the name exactly. */
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	int e = n < 0 ? errno : 0;
	close(fd);
	if (e)
		return -e;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}
