/*
 * relay_main.c - the wkfs-relay command: options, and the folder commands
 * that run without a server (`folder add|list|revoke`).
 *
 *   wkfs-relay --data DIR [--config FILE] [--bind ADDR:PORT]
 *              [--tls-cert F --tls-key F]
 *              [--limit NAME=VALUE]... [--metrics ADDR:PORT]
 *              [--admin-token-file FILE [--status-page]]
 *              [--git GITDIR [--git-branch B] [--git-commit-interval S]
 *               [--git-remote NAME [--git-push-interval S]]] [--verbose]
 *   wkfs-relay --data DIR folder add NAME | list | revoke NAME
 *   wkfs-relay --data DIR --rebuild-from-git GITDIR [--git-branch B]
 *
 * The config file (relay_config.h: --config FILE, or DIR/relay.ini when
 * it exists) is read when serving, before the other flags, which
 * override what it says.
 *
 * A folder's token is 32 bytes from /dev/urandom, printed once in hex; the
 * relay keeps only its SHA-256.  A rebuild prints a new token per folder:
 * the old ones are not in git (relay_git.c does the rest).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay.h"
#include "relay_config.h"
#include "relay_db.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 7890

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wkfs-relay --data DIR [--config FILE] [--bind ADDR:PORT]"
		" [--verbose]\n"
		"                  [--tls-cert FILE --tls-key FILE]\n"
		"                  [--limit NAME=VALUE]... [--metrics "
		"ADDR:PORT]\n"
		"                  [--admin-token-file FILE [--status-page]]\n"
		"                  [--git GITDIR [--git-branch B]"
		" [--git-commit-interval S]\n"
		"                   [--git-remote NAME"
		" [--git-push-interval S]]]\n"
		"       wkfs-relay --data DIR folder add NAME\n"
		"       wkfs-relay --data DIR folder list\n"
		"       wkfs-relay --data DIR folder revoke NAME\n"
		"       wkfs-relay --data DIR --rebuild-from-git GITDIR"
		" [--git-branch B]\n"
		"\n"
		"ADDR is a numeric IPv4 address or an IPv6 one in brackets"
		" ([::1]:7890);\n"
		"the default is " DEFAULT_HOST ":%d. `folder add` prints the"
		" folder's token;\n"
		"on a revoked folder it issues a new one and keeps the"
		" history.\n"
		"Without --config, DIR/" RELAY_CONFIG_NAME " is read when it"
		" exists; flags override it.\n"
		"Limits: hello-bytes, connections, connections-per-address,"
		" messages-per-second,\n"
		"frames-per-second, put-bytes, folder-bytes (see"
		" wkfs-relay(8)).\n",
		DEFAULT_PORT);
}

/*
 * --admin-token-file: the file's first line is the token (at least 16
 * characters, surrounding blanks dropped); only its SHA-256 is kept.
 */
static int read_admin_token(const char *what, const char *file,
			    uint8_t hash[32])
{
	char line[512], *t, *end;
	unsigned int n = 32;
	FILE *f = fopen(file, "re");
	bool got;

	if (!f) {
		wk_err("cannot read %s %s: %s", what, file, strerror(errno));
		return -1;
	}
	got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	t = line;
	if (got) {
		while (*t == ' ' || *t == '\t')
			t++;
		end = t + strlen(t);
		while (end > t && strchr(" \t\r\n", end[-1]))
			*--end = '\0';
	}
	if (!got || strlen(t) < 16) {
		wk_err("%s %s: its first line must be a token of at least 16"
		       " characters (make one with `openssl rand -hex 32`)",
		       what, file);
		return -1;
	}
	EVP_Digest(t, strlen(t), hash, &n, EVP_sha256(), NULL);
	memset(line, 0, sizeof(line));
	return 0;
}

/* A whole number of seconds, 1 .. 86400. */
static int parse_secs(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 86400)
		return -EINVAL;
	*out = (int)v;
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

/* A new token for folder name (created, or given a revoked one): its hex
 * into hex, only its hash into the database. */
static int issue_token(struct relay_db *db, const char *name,
		       char hex[2 * WIRE_TOKEN_LEN + 1])
{
	uint8_t token[WIRE_TOKEN_LEN], hash[RELAY_TOKEN_HASH_LEN];
	unsigned int n = sizeof(hash);
	int rc;

	rc = read_random(token, sizeof(token));
	if (rc) {
		wk_err("cannot read /dev/urandom: %s", strerror(-rc));
		return rc;
	}
	EVP_Digest(token, sizeof(token), hash, &n, EVP_sha256(), NULL);
	rc = relay_db_folder_add(db, name, hash);
	for (unsigned i = 0; !rc && i < sizeof(token); i++)
		snprintf(hex + 2 * i, 3, "%02x", token[i]);
	return rc;
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
		char hex[2 * WIRE_TOKEN_LEN + 1];

		rc = issue_token(db, argv[1], hex);
		if (rc == -EEXIST) {
			wk_err("folder %s exists (revoke it first for a new"
			       " token)",
			       argv[1]);
			goto out_close;
		}
		if (!rc)
			printf("%s\n", hex);
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

/* True when dir does not exist or is an empty directory. */
static bool dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/* Removes what a failed rebuild left in tmp (two levels of chunks). */
static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		char *sub;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sub = xasprintf("%s/%s", path, e->d_name);
		remove_tree(sub);
		free(sub);
	}
	closedir(d);
	rmdir(path);
}

/* The folders' names, collected (the foreach holds its statement). */
struct names {
	char (*v)[WIRE_FOLDER_MAX + 1];
	size_t n;
};

static int name_of(void *arg, const struct relay_folder *f)
{
	struct names *l = arg;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	memcpy(l->v[l->n++], f->name, sizeof(*l->v));
	return 0;
}

/*
 * --rebuild-from-git: the new relay is built in a directory next to DIR
 * and renamed onto it (DIR must not exist or be empty), so a failure
 * leaves nothing half-written.  Every folder gets a new token, printed
 * as "NAME TOKEN" lines once the rename is done.
 */
static int rebuild_cmd(char *data, const char *git_dir, const char *branch)
{
	struct names l = {NULL, 0};
	char(*tok)[2 * WIRE_TOKEN_LEN + 1] = NULL;
	struct relay_db *db = NULL;
	char *tmp, err[512] = "";
	struct stat st;
	int rc;

	/* DIR.rebuild-*, never DIR/.rebuild-* */
	while (strlen(data) > 1 && data[strlen(data) - 1] == '/')
		data[strlen(data) - 1] = '\0';
	tmp = xasprintf("%s/relay.db", data);
	rc = stat(tmp, &st);
	free(tmp);
	if (rc == 0 && st.st_size > 0) {
		wk_err("%s/relay.db exists: --rebuild-from-git makes a new"
		       " relay; give it a new --data directory",
		       data);
		return 1;
	}
	if (!dir_empty(data)) {
		wk_err("%s is not empty: --rebuild-from-git needs a new or"
		       " empty --data directory",
		       data);
		return 1;
	}
	tmp = xasprintf("%s.rebuild-XXXXXX", data);
	if (!mkdtemp(tmp)) {
		wk_err("cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return 1;
	}
	rc = relay_git_rebuild(git_dir, branch, tmp);
	if (!rc)
		rc = relay_db_open(tmp, &db, err, sizeof(err));
	if (!rc)
		rc = relay_db_folders_foreach(db, name_of, &l);
	if (!rc)
		tok = xcalloc(l.n + 1, sizeof(*tok));
	for (size_t i = 0; !rc && i < l.n; i++)
		rc = issue_token(db, l.v[i], tok[i]);
	relay_db_close(db);
	if (!rc && rename(tmp, data) < 0) {
		rc = -errno;
		snprintf(err, sizeof(err), "cannot rename %s to %s: %s", tmp,
			 data, strerror(-rc));
	}
	if (rc) {
		if (err[0])
			wk_err("%s", err);
		remove_tree(tmp);
	}
	for (size_t i = 0; !rc && i < l.n; i++)
		printf("%s\t%s\n", l.v[i], tok[i]);
	free(tmp);
	free(tok);
	free(l.v);
	return rc ? 1 : 0;
}

/*
 * The config file: --config FILE, which must exist, or DIR/relay.ini
 * when it does.  Its values go into o, lim and *set_conns, for the
 * flags to override.  0, or -1 once the problem is said.
 */
static int use_config(const char *config, struct relay_opts *o,
		      struct relay_limits *lim, bool *set_conns,
		      struct relay_config *cfg)
{
	char err[1024], *path;
	int rc;

	path = config ? xstrdup(config)
		      : xasprintf("%s/" RELAY_CONFIG_NAME, o->data_dir);
	rc = relay_config_load(path, cfg, err, sizeof(err));
	free(path);
	if (rc == -ENOENT && !config)
		return 0;
	if (rc) {
		wk_err("%s", err);
		relay_config_release(cfg);
		return -1;
	}
	/* Checked by relay_config_parse(): these cannot fail. */
	if (cfg->bind)
		relay_parse_addr(cfg->bind, &o->host, &o->port);
	if (cfg->metrics) {
		o->metrics_port = DEFAULT_PORT + 1;
		relay_parse_addr(cfg->metrics, &o->metrics_host,
				 &o->metrics_port);
	}
	if (cfg->admin_token_file) {
		char *what = xasprintf("the admin-token-file of %s", cfg->path);

		rc = read_admin_token(what, cfg->admin_token_file,
				      o->admin_hash);
		free(what);
		if (rc)
			return -1;
		o->has_admin = true;
	}
	o->status_page = cfg->status_page;
	o->tls_cert = cfg->tls_cert;
	o->tls_key = cfg->tls_key;
	*lim = cfg->lim;
	*set_conns = cfg->set_connections;
	return 0;
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
		{"git", required_argument, NULL, 'G'},
		{"git-branch", required_argument, NULL, 'B'},
		{"git-commit-interval", required_argument, NULL, 'I'},
		{"git-remote", required_argument, NULL, 'R'},
		{"git-push-interval", required_argument, NULL, 'P'},
		{"rebuild-from-git", required_argument, NULL, 'F'},
		{"limit", required_argument, NULL, 'L'},
		{"metrics", required_argument, NULL, 'M'},
		{"admin-token-file", required_argument, NULL, 'A'},
		{"status-page", no_argument, NULL, 'S'},
		{"config", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	struct relay_opts o = {.host = DEFAULT_HOST, .port = DEFAULT_PORT};
	struct relay_git_opts g = {.branch = RELAY_GIT_BRANCH,
				   .commit_secs = RELAY_GIT_COMMIT_SECS,
				   .push_secs = RELAY_GIT_PUSH_SECS};
	/* o points into it until the process ends. */
	static struct relay_config cfg;
	struct relay_limits lim;
	const char *rebuild = NULL, *config = NULL;
	char *data_arg = NULL, err[512];
	bool git_opt = false, set_conns = false;
	int c, rc;

	wlog_init(argv[0]);
	relay_limits_init(&lim);
	relay_config_init(&cfg);
	/* First where the config file is: its values come before the
	 * flags, which override them. */
	while ((c = getopt_long(argc, argv, "+b:d:c:k:vh", longopts, NULL)) !=
	       -1) {
		if (c == 'd')
			o.data_dir = data_arg = optarg;
		else if (c == 'C')
			config = optarg;
		else if (c == 'F')
			rebuild = optarg;
		else if (c == 'h' || c == '?')
			break;
	}
	if (c == 'h') {
		usage(stdout);
		return 0;
	}
	if (c == '?' || !o.data_dir) {
		usage(stderr);
		return 2;
	}
	if (config && (rebuild || optind < argc)) {
		wk_err("--config is for serving: folder commands and"
		       " --rebuild-from-git read no config file");
		return 2;
	}
	if (!rebuild && optind == argc &&
	    use_config(config, &o, &lim, &set_conns, &cfg))
		return 2;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+b:d:c:k:vh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'C':
			break;
		case 'b':
			if (relay_parse_addr(optarg, &o.host, &o.port)) {
				wk_err("bad --bind '%s': use ADDR:PORT or"
				       " [IPV6]:PORT",
				       optarg);
				return 2;
			}
			break;
		case 'd':
			o.data_dir = data_arg = optarg;
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
		case 'G':
			g.dir = optarg;
			break;
		case 'B':
		case 'R':
			if (c == 'B')
				g.branch = optarg;
			else
				g.remote = optarg;
			git_opt = true;
			break;
		case 'I':
		case 'P':
			if (parse_secs(optarg, c == 'I' ? &g.commit_secs
							: &g.push_secs)) {
				wk_err("bad --%s '%s': use whole seconds,"
				       " 1 to 86400",
				       c == 'I' ? "git-commit-interval"
						: "git-push-interval",
				       optarg);
				return 2;
			}
			git_opt = true;
			break;
		case 'F':
			rebuild = optarg;
			break;
		case 'M':
			o.metrics_port = DEFAULT_PORT + 1;
			if (relay_parse_addr(optarg, &o.metrics_host,
					     &o.metrics_port)) {
				wk_err("bad --metrics '%s': use ADDR:PORT or"
				       " [IPV6]:PORT",
				       optarg);
				return 2;
			}
			break;
		case 'A':
			if (read_admin_token("--admin-token-file", optarg,
					     o.admin_hash))
				return 2;
			o.has_admin = true;
			break;
		case 'S':
			o.status_page = true;
			break;
		case 'L':
			if (relay_limit_parse(&lim, optarg, err, sizeof(err))) {
				wk_err("%s", err);
				return 2;
			}
			set_conns = set_conns ||
				    strncmp(optarg, "connections=", 12) == 0;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.data_dir) {
		usage(stderr);
		return 2;
	}
	if (relay_git_branch_check(g.branch)) {
		wk_err("bad --git-branch '%s': not a git branch name",
		       g.branch);
		return 2;
	}
	if (rebuild) {
		if (optind < argc || g.dir || g.remote) {
			usage(stderr);
			return 2;
		}
		return rebuild_cmd(data_arg, rebuild, g.branch);
	}
	if (git_opt && !g.dir) {
		wk_err("--git-branch, --git-remote and the intervals go with"
		       " --git DIR");
		return 2;
	}
	if (g.dir) {
		/* git_cmd() needs it from the git thread's first write on,
		 * before relay_serve() sets it. */
		signal(SIGPIPE, SIG_IGN);
		g.verbose = o.verbose;
		o.git = &g;
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "folder") != 0) {
			usage(stderr);
			return 2;
		}
		return folder_cmd(o.data_dir, argc - optind - 1,
				  argv + optind + 1);
	}
	if (o.status_page && !o.has_admin) {
		wk_err("--status-page needs --admin-token-file: the page is"
		       " for the relay's admin only");
		return 2;
	}
	if (!o.tls_cert != !o.tls_key) {
		wk_err("--tls-cert and --tls-key go together");
		return 2;
	}
	relay_limits_fit_fds(&lim, set_conns);
	if (o.verbose) {
		char desc[512];

		if (cfg.path)
			wk_info("config: %s", cfg.path);
		relay_limits_describe(&lim, desc, sizeof(desc));
		wk_info("limits: %s", desc);
	}
	o.limits = &lim;
	rc = relay_serve(&o) ? 1 : 0;
	relay_config_release(&cfg);
	return rc;
}
