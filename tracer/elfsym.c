/* Symbol lookups in ELF files with libelf, for finding the allocator and
 * the dynamic linker's debug hooks.  (Names for reports are symbols/'s
 * job; the tracer only needs a few addresses.) */
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct elf_file {
	int fd;
	Elf *elf;
};

static int elf_open(const char *path, struct elf_file *f)
{
	static int version_set;
	if (!version_set) {
		elf_version(EV_CURRENT);
		version_set = 1;
	}
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -HD_EELF;
	f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf || elf_kind(f->elf) != ELF_K_ELF) {
		if (f->elf)
			elf_end(f->elf);
		close(f->fd);
		return -HD_EELF;
	}
	return 0;
}

static void elf_close(struct elf_file *f)
{
	elf_end(f->elf);
	close(f->fd);
}

/* One pass over a symbol table for every name still missing
 * (values[i] == 0). */
static void lookup_in(Elf *elf, Elf64_Word type, const char *const *names,
		      int n, uint64_t *values, uint64_t *sizes)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type ||
		    !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s) ||
			    s.st_shndx == SHN_UNDEF || s.st_value == 0)
				continue;
			int t = GELF_ST_TYPE(s.st_info);
			if (t != STT_FUNC && t != STT_OBJECT)
				continue; /* an IFUNC's value is its resolver,
					     not what the process calls */
			const char *nm = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!nm)
				continue;
			for (int k = 0; k < n; k++) {
				if (values[k] || strcmp(nm, names[k]) != 0)
					continue;
				values[k] = s.st_value;
				if (sizes)
					sizes[k] = s.st_size;
			}
		}
	}
}

int hd_elf_lookup_many(const char *path, const char *const *names, int n,
		       bool symtab, uint64_t *values, uint64_t *sizes)
{
	struct elf_file f;
	int err = elf_open(path, &f);
	if (err)
		return err;
	for (int k = 0; k < n; k++) {
		values[k] = 0;
		if (sizes)
			sizes[k] = 0;
	}
	lookup_in(f.elf, SHT_DYNSYM, names, n, values, sizes);
	if (symtab)
		lookup_in(f.elf, SHT_SYMTAB, names, n, values, sizes);
	elf_close(&f);
	return 0;
}

int hd_elf_lookup(const char *path, const char *name, bool symtab,
		  uint64_t *value, uint64_t *size)
{
	int err = hd_elf_lookup_many(path, &name, 1, symtab, value, size);
	if (err)
		return err;
	return *value ? 0 : -HD_ENOTFOUND;
}

int hd_elf_bias(const char *path, uint64_t start, uint64_t offset,
		uint64_t *bias, int *etype)
{
	struct elf_file f;
	int err = elf_open(path, &f);
	if (err)
		return err;
	GElf_Ehdr eh;
	size_t nph;
	err = -HD_EELF;
	if (!gelf_getehdr(f.elf, &eh) || elf_getphdrnum(f.elf, &nph))
		goto out;
	*etype = eh.e_type;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(f.elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		uint64_t pg_off = ph.p_offset & ~(uint64_t)0xfff;
		if (pg_off != offset)
			continue;
		uint64_t pg_vaddr = ph.p_vaddr & ~(uint64_t)0xfff;
		*bias = eh.e_type == ET_EXEC ? 0 : start - pg_vaddr;
		err = 0;
		break;
	}
out:
	elf_close(&f);
	return err;
}

int hd_elf_check_x64(const char *path)
{
	struct elf_file f;
	int err = elf_open(path, &f);
	if (err)
		return err;
	GElf_Ehdr eh;
	if (!gelf_getehdr(f.elf, &eh))
		err = -HD_EELF;
	else if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
		 eh.e_machine != EM_X86_64)
		err = -HD_ENOTX64;
	elf_close(&f);
	return err;
}

int hd_elf_interp(const char *path, char *buf, size_t len)
{
	struct elf_file f;
	int err = elf_open(path, &f);
	if (err)
		return err;
	size_t nph, size;
	buf[0] = '\0';
	const char *raw = elf_rawfile(f.elf, &size);
	if (!raw || elf_getphdrnum(f.elf, &nph)) {
		elf_close(&f);
		return -HD_EELF;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(f.elf, (int)i, &ph) || ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset + ph.p_filesz > size || ph.p_filesz == 0)
			break;
		size_t n = ph.p_filesz < len ? ph.p_filesz : len - 1;
		memcpy(buf, raw + ph.p_offset, n);
		buf[n] = '\0';
		buf[strnlen(buf, n)] = '\0';
		break;
	}
	elf_close(&f);
	return 0;
}
