/*
 * relay_main.c - the wkfs-relay command: options, and the folder commands
 * that run without a server (`folder add|list|revoke`).
 *
 *   wkfs-relay --data DIR [--bind ADDR:PORT] [--tls-cert F --tls-key F]
 *              [--verbose]
 *   wkfs-relay --data DIR folder add NAME | list | revoke NAME
 *
 * A folder's token is 32 bytes from /dev/urandom, printed once in hex; the
 * relay keeps only its SHA-256.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay.h"
#include "relay_db.h"
#include "wire.h"
#include "wlog.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 7890

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wkfs-relay --data DIR [--bind ADDR:PORT]"
		" [--tls-cert FILE --tls-key FILE] [--verbose]\n"
		"       wkfs-relay --data DIR folder add NAME\n"
		"       wkfs-relay --data DIR folder list\n"
		"       wkfs-relay --data DIR folder revoke NAME\n"
		"\n"
		"ADDR is a numeric IPv4 address or an IPv6 one in brackets"
		" ([::1]:7890);\n"
		"the default is " DEFAULT_HOST ":%d. `folder add` prints the"
		" folder's token;\n"
		"on a revoked folder it issues a new one and keeps the"
		" history.\n",
		DEFAULT_PORT);
}

/* "1.2.3.4:80", "[::1]:80", "host" (default port); host is rewritten. */
static int parse_bind(char *s, const char **host, int *port)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char *colon, *end;
	long p;

	if (s[0] == '[') {
		char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		*close = '\0';
		*host = s + 1;
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return -EINVAL; /* bare IPv6: needs brackets */
		if (colon)
			*colon = '\0';
		*host = s;
	}
	if (inet_pton(strchr(*host, ':') ? AF_INET6 : AF_INET, *host, addr) !=
	    1)
		return -EINVAL; /* numeric only: lws takes names as interfaces
				 */
	if (!colon)
		return 0;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

static int read_random(uint8_t *p, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

static int print_folder(void *arg, const struct relay_folder *f)
{
	printf("%s\t%s\t%llu\n", f->name, f->active ? "active" : "revoked",
	       (unsigned long long)f->head);
	return 0;
}

static int folder_cmd(const char *dir, int argc, char **argv)
{
	struct relay_db *db;
	char err[512];
	int rc;

	if (argc < 1 ||
	    (strcmp(argv[0], "list") == 0 ? argc != 1 : argc != 2)) {
		usage(stderr);
		return 2;
	}
	if (argc == 2 && !wire_folder_valid(argv[1], strlen(argv[1]))) {
		wk_err("bad folder name '%s': use 1-%u letters, digits, '.',"
		       " '_' or '-', not starting with '.'",
		       argv[1], WIRE_FOLDER_MAX);
		return 2;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		wk_err("cannot create %s: %s", dir, strerror(errno));
		return 1;
	}
	rc = relay_db_open(dir, &db, err, sizeof(err));
	if (rc) {
		wk_err("%s", err);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0) {
		rc = relay_db_folders_foreach(db, print_folder, NULL);
	} else if (strcmp(argv[0], "add") == 0) {
		uint8_t token[WIRE_TOKEN_LEN], hash[RELAY_TOKEN_HASH_LEN];
		unsigned int n = sizeof(hash);

		rc = read_random(token, sizeof(token));
		if (rc) {
			wk_err("cannot read /dev/urandom: %s", strerror(-rc));
			goto out_close;
		}
		EVP_Digest(token, sizeof(token), hash, &n, EVP_sha256(), NULL);
		rc = relay_db_folder_add(db, argv[1], hash);
		if (rc == -EEXIST) {
			wk_err("folder %s exists (revoke it first for a new"
			       " token)",
			       argv[1]);
			goto out_close;
		}
		if (!rc) {
			for (unsigned i = 0; i < sizeof(token); i++)
				printf("%02x", token[i]);
			printf("\n");
		}
	} else if (strcmp(argv[0], "revoke") == 0) {
		rc = relay_db_folder_revoke(db, argv[1]);
		if (rc == -ENOENT) {
			wk_err("no folder %s", argv[1]);
			goto out_close;
		}
	} else {
		usage(stderr);
		relay_db_close(db);
		return 2;
	}
	if (rc)
		wk_err("folder %s: %s (%s)", argv[0], strerror(-rc),
		       relay_db_errmsg(db));

out_close:
	relay_db_close(db);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"bind", required_argument, NULL, 'b'},
		{"data", required_argument, NULL, 'd'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct relay_opts o = {.host = DEFAULT_HOST, .port = DEFAULT_PORT};
	int c;

	wlog_init(argv[0]);
	while ((c = getopt_long(argc, argv, "+b:d:c:k:vh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'b':
			if (parse_bind(optarg, &o.host, &o.port)) {
				wk_err("bad --bind '%s': use ADDR:PORT or"
				       " [IPV6]:PORT",
				       optarg);
				return 2;
			}
			break;
		case 'd':
			o.data_dir = optarg;
			break;
		case 'c':
			o.tls_cert = optarg;
			break;
		case 'k':
			o.tls_key = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.data_dir) {
		usage(stderr);
		return 2;
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "folder") != 0) {
			usage(stderr);
			return 2;
		}
		return folder_cmd(o.data_dir, argc - optind - 1,
				  argv + optind + 1);
	}
	if (!o.tls_cert != !o.tls_key) {
		wk_err("--tls-cert and --tls-key go together");
		return 2;
	}
	return relay_serve(&o) ? 1 : 0;
}
