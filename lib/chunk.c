/*
 * chunk.c - content-defined chunking and chunk names (see chunk.h).
 *
 * What it is not: it does not store, index or send chunks; recipe.c turns
 * the chunks of a file into a list, others move them.
 */
#include "chunk.h"
#include "content.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

/* How much chunk_fd() reads at a time. */
#define CHUNK_READ_PIECE (4u << 20)

/*
 * splitmix64 from seed 0x776b667367656172, values 0 .. 255.  Kept as a
 * literal, not computed at start-up, so it is plainly data of the format;
 * test_chunk.c regenerates it and compares.  NEVER CHANGE (see chunk.h).
 */
const uint64_t chunk_gear[256] = {
	0xeca95d92db63108a, 0x195474ce4194f7eb, 0xf84fdf8ca0a438df,
	0x9988f9dcd0494493, 0x5a1a7a5b37eeb1e1, 0xdcba444f1ecdc336,
	0x35292a7d366fe414, 0x1334d336d9db4863, 0x48da4d1feac91b22,
	0x63d888b0f4d3100d, 0xac607f71ee414ef5, 0xcd011d6e10f9266d,
	0x114f976618fc1de9, 0x3fde1f8a7bbf7e68, 0x13cb62c66b15ec8a,
	0x445635db2372b6a5, 0x9e1d14790061888a, 0x657bb285a5cd5485,
	0xb645cbfa02c1c01e, 0x7a04ea1a3a7e8651, 0xd4a70a1a8e96078c,
	0xea717d16116bb72d, 0xa3d354ee7fa8a1aa, 0xd730c852c60d02dd,
	0x1f077ac3b9eb76bd, 0x7817b7f868608065, 0xcea491f1716a1c62,
	0xf1af4a57972e8939, 0x7afb5bee7ead53df, 0x078e47f778111546,
	0xfb11e0df7d5cc7e3, 0x1982b693396ed519, 0xfdeec3cc80671d20,
	0xfc79eae8c713d6a2, 0x9425262b0d2a3d29, 0x3deb7eed790fc63e,
	0xfd49e10c251a3e29, 0x8cf330303e27841f, 0xad43191070e4390b,
	0xfc03f99973cb5783, 0x13a2807aacdb12cf, 0x118f211cf1710449,
	0xf4026168ca4867da, 0x2857f3f003421460, 0x0da27e8b4368c74d,
	0x5c5e11a831751dea, 0x0d6a1d57335e6baf, 0xd5ebe29bab23743d,
	0x46e59347874c0a0e, 0xba3805873d89482b, 0xd777f96b004a0088,
	0x613570bfe3600c8f, 0xb2ca95f150e6aea0, 0xa9237677232610f9,
	0xad55047c0b7261fb, 0x2282af6e75b2bfc2, 0x1e06c743f6b922d3,
	0xe7ba495f1a21443d, 0xa5bca34477694d17, 0xc92f897d6fc3c642,
	0x9e2017eb9409eb51, 0x378de9f1bcee23d1, 0x108b5b89e1b050a7,
	0xfd1fcfbcb8f0a3db, 0x3d97a53005ca4c9d, 0x38a835ec3a014e26,
	0x1ca92d9610960e13, 0x9bc9bb33d5cd2671, 0x5184ec0392a14f90,
	0xf7e8df28da8c2665, 0x9bba6655eb0ed1c0, 0xa831a1e844e2f2c9,
	0x5d3ce7455025f26d, 0xdc4ced7f3136fbc6, 0x8a67124f27e00395,
	0xf110e46b9e94089c, 0x59e06917e7dc21bf, 0x151855de58dcd3a5,
	0x10a4d86879db5913, 0x19b1e62d5aa4fde0, 0x1b6d644878b1007a,
	0x9bfdb44cdeec98b7, 0x564d1cbdf923fd97, 0x56625713437f462b,
	0xb279114b6d49c3b3, 0x4ba8d1118bd842db, 0x5d5971d736b2dfe6,
	0xb471d9e07be0d1b5, 0x402442dd75698491, 0x036c88b30f0623eb,
	0x4f9901c2d22dd19b, 0x543ce161fd8c7e50, 0x49d481556ba373df,
	0x0a39b20e5ed1b597, 0x6bfb48329053c0ee, 0x92d4ce4c9310a6af,
	0xe5700f0d8b3d6a9b, 0x9d24429634d2be57, 0x2465de0bb9d41d76,
	0x30908bee043fc6f3, 0x11031504562cfb9e, 0x2a666f4c9a38e5ac,
	0x99cb9828b5bd60e6, 0x9175b8fc00f964bd, 0x8879461aaceb56c4,
	0x891a636926e637b1, 0xc5eb89f649869db2, 0xb8bd37953ebdd6c0,
	0x5dccdae076c06ed5, 0x690c058cf3e436e9, 0x1bff4ee6ba1d0dbc,
	0xdfe9d8b1b746020a, 0xea9be564fbd44590, 0x408e8d90fd5b3e54,
	0xec016ce4290cc43a, 0x0dec3de7825dcbeb, 0x8e48a0f529316162,
	0x810c2e6bab1f6e64, 0x6f2dddd31b49adba, 0xbe133fc75208cb96,
	0xbe985edcaa2e008a, 0xf89deaf0e071e4ea, 0x698c3aa2d5aa36eb,
	0xbea12b6f1b070386, 0x9764f627615cf836, 0xab6d936e23555767,
	0xe97d723bbfcd455a, 0xc8f21954de8d8d84, 0x93a55ee235fc0bd4,
	0x27c2a2ffcd13cf15, 0x5156b88c1a11ee95, 0xb5e0653bad6cd43d,
	0x017e22a5068b5487, 0x5ffa9c24a57c600e, 0x1efe11bbf0d8c9f9,
	0x341f2147a4931ced, 0x96d9ee5bdc2dadf5, 0x66885cbbc9e092de,
	0xc767185487c3e22a, 0x5407d29f9a788212, 0x26813ce9f343796f,
	0x18d2cbc1f596d3c0, 0xaa42ad8a1a6613b4, 0x25af1d42486829b7,
	0xe91236655334a6b7, 0x7cd4127d74a9ab58, 0xa45345c528cee8fc,
	0x5aa337bcb621de67, 0x60a440a4fc1a5aab, 0x32212e7b985f05b2,
	0x86670ab864da6e33, 0x032f2467aeba1477, 0xfbebb2cb65ce8aad,
	0xa688e34d31b50108, 0x2536c24d678cca5e, 0xdcd69a92325258aa,
	0x36231c6d98d0c420, 0x09c1c16c4a0eb170, 0x8d9504b9474a8edd,
	0xefe25736520d52ae, 0x74cc14d531b6fd9e, 0x96e4a85b3327fe00,
	0x16ffecdd416cf1ae, 0x7e60be464f48608c, 0xa54e6550e6529140,
	0x5e3e4536fbcdb5d3, 0x1bc82f30a9265738, 0xc6fefd170232ee16,
	0xef730a531ad01fa0, 0xd4283d7e0aee01d0, 0x9bcf7be06d709999,
	0xb9176a25bbafd921, 0xab88fea1c625feb4, 0x2f7427fe15e9df9d,
	0x04b1fda6167b9f2f, 0x34ef0abee7359cc8, 0xf15d521c0caff4a0,
	0x86727981094425ec, 0x4d0d12ea992b39e1, 0x224822c735864a00,
	0xe3166566cbf6ca0a, 0x9e4bf24330f45140, 0x5c660b56dfa5ddb4,
	0x72124e2a9a921b70, 0x0a0231201cb2a5e3, 0xd9aa5f675c99c3eb,
	0x0bf8a7e6fa0adcd6, 0x39a7fa6f72c0822a, 0x054e78262b61335d,
	0x342de0724e72deb7, 0xc7109988de483270, 0x198f54d6f44bf096,
	0x9bb94a7b840b9e25, 0x245eddecdcea939d, 0xb585280cebe38fff,
	0x475b77cfcd93b68f, 0x1f9efc9152db18bb, 0x7b0faaf6aef13913,
	0x15acbf0315a36200, 0x577038e433d631f6, 0x4a27b5c2667cfb4e,
	0xde137e3e2aca26db, 0x9c6986fa97998819, 0x642c47b43f3f954f,
	0xd8f36bf972683896, 0x10a5e3d4bb9f9bd5, 0x49ff08305f7bbe1c,
	0x6e33cf71eb23f000, 0x1df84e2d3e37f728, 0x85c0b99f570960a2,
	0xe45fb401f36c50db, 0x80159c6a340cfec7, 0xd0ecee9b08a12f59,
	0xc22da1c6db8c58ca, 0x4e69bb4ed9154736, 0xc2071b3aa195c43a,
	0xafa63cc34fb3146f, 0x3b25781368aadb77, 0x41837911895d2eb0,
	0xa0ea32c1b3ca7640, 0x4ef5c2921b053d3c, 0xf94b0d24c7f563cb,
	0x2b179f0e2dfafd80, 0x89bb5e65af8bc0a4, 0xce5a355de353c35a,
	0xda6231d6eca04d9f, 0x63183fd62d58825e, 0x3a41be112e130904,
	0xa59114439d4ddba5, 0xa516230b6bc30eb2, 0x4fcb7c8acbe2983c,
	0x527317114a9bf048, 0x8f36eeed0b8f355d, 0xbae1ec4fff2d92cf,
	0x2a75ae3e95a2c208, 0x9ee47ccc48ae7e5c, 0x85800daaabe3b6bb,
	0x78dce6089227d393, 0xf79e0ceafb382e7e, 0xb5c89fd6ff6f37ab,
	0x32850834f8cfe7c4, 0xef22a74aa7ac8645, 0xa668d6482b4f8d5d,
	0xcc5a5c78199c1589, 0x7e6b72c283374470, 0x81b2fe7440066a04,
	0xeeccde8298db76dd, 0xde09a00b89ca686e, 0xb32042927d7f8a81,
	0x518cb01c5b57b10f, 0xe46a6602d5cb1388, 0xe10ae6489d7bcd08,
	0x011e5721e0d269d6, 0x2ec1cc1bd3612b70, 0xfb84ad3af302104a,
	0xe9159e1b63edccc6,
};

int chunker_init(struct chunker *c, unsigned flags)
{
	*c = (struct chunker){0};
	if (flags & CHUNKER_NAME) {
		c->xx = XXH3_createState();
		if (!c->xx)
			return -ENOMEM;
		XXH3_128bits_reset(c->xx);
	}
	return 0;
}

void chunker_release(struct chunker *c)
{
	if (c->xx)
		XXH3_freeState(c->xx);
	c->xx = NULL;
}

/* Hands out the current chunk (c->len bytes) and starts the next one. */
static void chunker_cut(struct chunker *c, struct chunk *out)
{
	out->off = c->off;
	out->len = c->len;
	memset(&out->name, 0, sizeof(out->name));
	if (c->xx) {
		XXH128_canonical_t canon;

		XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(c->xx));
		memcpy(out->name.b, canon.digest, sizeof(out->name.b));
		XXH3_128bits_reset(c->xx);
	}
	c->off += c->len;
	c->len = 0;
	c->h = 0;
}

/*
 * Scans p[*i .. end) with mask, carrying the gear hash in c->h.  True when a
 * byte is a cut point: *i is then just past it; else *i = end.
 */
static bool gear_scan(struct chunker *c, const uint8_t *p, size_t *i,
		      size_t end, uint64_t mask)
{
	uint64_t h = c->h;

	for (size_t k = *i; k < end; k++) {
		h = (h << 1) + chunk_gear[p[k]];
		if (!(h & mask)) {
			c->h = h;
			*i = k + 1;
			return true;
		}
	}
	c->h = h;
	*i = end;
	return false;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

bool chunk_next(struct chunker *c, const void *buf, size_t n, size_t *used,
		struct chunk *out)
{
	const uint8_t *p = buf;
	size_t i = 0, end;
	bool cut = false;

	/* The first CHUNK_MIN bytes cannot end a chunk: skip them unhashed. */
	if (c->len < CHUNK_MIN)
		i = min_size(n, CHUNK_MIN - c->len);
	if (c->len + i >= CHUNK_MIN && c->len + i < CHUNK_NORMAL) {
		end = i + min_size(n - i, CHUNK_NORMAL - (c->len + i));
		cut = gear_scan(c, p, &i, end, CHUNK_MASK_HARD);
	}
	if (!cut && c->len + i >= CHUNK_NORMAL) {
		end = i + min_size(n - i, CHUNK_MAX - (c->len + i));
		cut = gear_scan(c, p, &i, end, CHUNK_MASK_EASY) ||
		      c->len + i == CHUNK_MAX;
	}
	if (c->xx)
		XXH3_128bits_update(c->xx, p, i);
	c->len += i;
	*used = i;
	if (cut)
		chunker_cut(c, out);
	return cut;
}

bool chunker_finish(struct chunker *c, struct chunk *out)
{
	bool any = c->len > 0;

	if (any)
		chunker_cut(c, out);
	c->off = 0;
	return any;
}

int chunker_feed(struct chunker *c, const void *buf, size_t n, chunk_fn *fn,
		 void *arg)
{
	const uint8_t *p = buf;
	struct chunk ch;
	size_t used;
	int rc;

	while (chunk_next(c, p, n, &used, &ch)) {
		rc = fn(arg, &ch);
		if (rc)
			return rc;
		p += used;
		n -= used;
	}
	return 0;
}

struct feed {
	struct chunker *c;
	chunk_fn *fn;
	void *arg;
};

static int feed_piece(void *arg, const void *p, size_t n)
{
	struct feed *f = arg;

	return chunker_feed(f->c, p, n, f->fn, f->arg);
}

int chunk_fd(int fd, chunk_fn *fn, void *arg)
{
	struct chunker c;
	struct chunk ch;
	struct feed f = {&c, fn, arg};
	int rc;

	rc = chunker_init(&c, CHUNKER_NAME);
	if (rc < 0)
		return rc;
	rc = content_read_pieces(fd, CHUNK_READ_PIECE, feed_piece, &f, NULL);
	if (!rc && chunker_finish(&c, &ch))
		rc = fn(arg, &ch);
	chunker_release(&c);
	return rc;
}
