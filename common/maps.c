#include "maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int hd_maps_read(pid_t pid, struct hd_maps *out)
{
	char fn[64], *line = NULL;
	size_t cap = 0, alloc = 0;
	struct hd_maps m = {0};
	snprintf(fn, sizeof(fn), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return errno == EACCES || errno == EPERM ? -HD_EPERM
							 : -HD_ENOPROC;
	while (getline(&line, &cap, f) > 0) {
		struct hd_map e = {0};
		int pos = 0;
		unsigned dmaj, dmin;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64
				 " %x:%x %" SCNu64 " %n",
			   &e.start, &e.end, e.perms, &e.offset, &dmaj, &dmin,
			   &e.inode, &pos) < 7)
			continue;
		char *p = line + pos;
		p[strcspn(p, "\n")] = '\0';
		if (*p) {
			e.path = strdup(p);
			if (!e.path)
				goto nomem;
		}
		if (m.n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			struct hd_map *nv = realloc(m.v, na * sizeof(*nv));
			if (!nv) {
				free(e.path);
				goto nomem;
			}
			m.v = nv;
			alloc = na;
		}
		m.v[m.n++] = e;
	}
	free(line);
	fclose(f);
	if (m.n == 0) {
		/* A kernel thread or a process that just exited has none. */
		hd_maps_free(&m);
		return -HD_ENOPROC;
	}
	*out = m;
	return 0;
nomem:
	free(line);
	fclose(f);
	hd_maps_free(&m);
	return -HD_ENOMEM;
}

void hd_maps_free(struct hd_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

const struct hd_map *hd_maps_find(const struct hd_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}
