/* tracer/reloc: relocating entry instructions into a trampoline.
 *
 * Hand-made sequences check the exact bytes produced and every refusal;
 * the live tests relocate the real glibc entry points of this process into
 * a page near libc (and one far from it), call the trampolines and check
 * that the functions still work. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "hd_test.h"
#include "tracer/reloc.h"

#define SRC 0x7f0000400000ull
#define DST (SRC + 0x100000)		 /* near: rel32 reaches */
#define FAR (SRC + 0x100000000ull)	 /* 4 GiB away: it does not */

/* The sequence followed by int3 filler, as the code bytes at SRC; the
 * function is `bodylen` bytes of it (0: size unknown). */
static int build(const uint8_t *seq, size_t n, uint64_t dst, size_t min_len,
		 size_t bodylen, struct hd_reloc *r)
{
	static uint8_t buf[256];

	memset(buf, 0xcc, sizeof(buf));
	memcpy(buf, seq, n);
	return hd_reloc_build(buf, sizeof(buf), SRC, dst, min_len,
			      bodylen ? buf : NULL, bodylen, r);
}

static void le32(uint8_t *p, int64_t v)
{
	int32_t w = (int32_t)v;
	memcpy(p, &w, 4);
}

static void le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* rel32 of an instruction at `at`, `len` long, to `to`. */
static int64_t rel(uint64_t at, size_t len, uint64_t to)
{
	return (int64_t)(to - at - len);
}

#define EXPECT_CODE(r, exp)                                                  \
	do {                                                                 \
		HD_EXPECT_EQ((r)->len, sizeof(exp));                         \
		if ((r)->len == sizeof(exp) &&                               \
		    memcmp((r)->code, exp, sizeof(exp)) != 0) {              \
			HD_FAIL_AT("trampoline bytes differ");               \
			for (size_t i_ = 0; i_ < sizeof(exp); i_++)          \
				fprintf(stderr, " %02x/%02x", (r)->code[i_], \
					(exp)[i_]);                          \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

#define EXPECT_REFUSED(err, r, text)                                         \
	do {                                                                 \
		HD_EXPECT_EQ(err, -HD_EINVAL);                               \
		HD_EXPECT_STREQ((r)->why, text);                             \
	} while (0)

/* glibc 2.36 malloc: push %r12; push %rbp; push %rbx; mov %rdi,%rbx;
 * sub $0x10,%rsp */
static const uint8_t malloc_seq[] = {0x41, 0x54, 0x55, 0x53, 0x48, 0x89,
				     0xfb, 0x48, 0x83, 0xec, 0x10};

HD_TEST(prologue_push_mov)
{
	struct hd_reloc r;
	uint8_t exp[12] = {0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0xe9,
			   0xfb, 0xff, 0xef, 0xff}; /* jmp SRC+7 */

	HD_ASSERT(build(malloc_seq, sizeof(malloc_seq), DST, 5, 0, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 7);
	HD_EXPECT_EQ(r.ninsn, 4);
	HD_EXPECT_EQ(r.src_off[1], 2);
	HD_EXPECT_EQ(r.src_off[3], 4);
	HD_EXPECT_EQ(r.dst_off[3], 4);
	HD_EXPECT_EQ(r.jmp_back, 7);
	EXPECT_CODE(&r, exp);
	HD_EXPECT_STREQ(r.text, "push %r12; push %rbp; push %rbx; mov %rdi, %rbx");
	HD_EXPECT_STREQ(r.why, "");
}

HD_TEST(prologue_sub_with_longer_patch)
{
	struct hd_reloc r;

	/* min_len 8 takes the 4-byte sub too: 11 bytes, 5 instructions. */
	HD_ASSERT(build(malloc_seq, sizeof(malloc_seq), DST, 8, 0, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 11);
	HD_EXPECT_EQ(r.ninsn, 5);
	HD_EXPECT(memcmp(r.code, malloc_seq, 11) == 0);
	HD_EXPECT_EQ(r.code[11], 0xe9);
	HD_EXPECT_EQ(r.len, 16);
}

HD_TEST(test_je_rel32_glibc_free)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0x48, 0x85, 0xff, 0x0f, 0x84,
				      0xe6, 0x00, 0x00, 0x00};
	uint8_t exp[14] = {0x48, 0x85, 0xff, 0x0f, 0x84, 0, 0, 0, 0, 0xe9};

	le32(exp + 5, rel(DST + 3, 6, SRC + 9 + 0xe6));
	le32(exp + 10, rel(DST + 9, 5, SRC + 9));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 9);
	HD_EXPECT_EQ(r.ninsn, 2);
	EXPECT_CODE(&r, exp);
	HD_EXPECT_EQ(r.dst_off[1], 3);
	HD_EXPECT_EQ(r.jmp_back, 9);
}

HD_TEST(cmpb_riprel_glibc_posix_memalign)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0x80, 0x3d, 0x46, 0x1b, 0x14, 0x00, 0x00};
	uint8_t exp[12] = {0x80, 0x3d, 0, 0, 0, 0, 0x00, 0xe9};

	le32(exp + 2, rel(DST, 7, SRC + 7 + 0x141b46));
	le32(exp + 8, rel(DST + 7, 5, SRC + 7));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 7);
	EXPECT_CODE(&r, exp);
	/* The text shows the original instruction. */
	HD_EXPECT_STREQ(r.text, "cmpb $0x0, 0x141b46(%rip)");
}

HD_TEST(mov_riprel_to_rax)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0x48, 0x8b, 0x05, 0x08, 0xa4, 0x13, 0x00};
	uint8_t exp[12] = {0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xe9};

	le32(exp + 3, rel(DST, 7, SRC + 7 + 0x13a408));
	le32(exp + 8, rel(DST + 7, 5, SRC + 7));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp);
}

HD_TEST(riprel_below_the_trampoline)
{
	struct hd_reloc r;
	/* lea -0x10(%rip),%rax with the trampoline *below* the source. */
	static const uint8_t seq[] = {0x48, 0x8d, 0x05, 0xf0, 0xff, 0xff, 0xff};
	uint64_t dst = SRC - 0x7fff0000;
	uint8_t exp[7] = {0x48, 0x8d, 0x05};

	le32(exp + 3, rel(dst, 7, SRC + 7 - 0x10));
	HD_ASSERT(build(seq, sizeof(seq), dst, 5, 0, &r) == 0);
	HD_EXPECT(memcmp(r.code, exp, 7) == 0);
}

HD_TEST(riprel_out_of_reach_refused)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0x48, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00};
	int err = build(seq, sizeof(seq), SRC + 0xc0000000ull, 5, 0, &r);

	EXPECT_REFUSED(err, &r, "mov at +0: rip-relative operand "
			"0x7f0000400007 out of reach of the trampoline");
}

HD_TEST(jcc_rel8_widened)
{
	struct hd_reloc r;
	/* test %rdi,%rdi; jl .+0x12 */
	static const uint8_t seq[] = {0x48, 0x85, 0xff, 0x7c, 0x10};
	uint8_t exp[14] = {0x48, 0x85, 0xff, 0x0f, 0x8c, 0, 0, 0, 0, 0xe9};

	le32(exp + 5, rel(DST + 3, 6, SRC + 5 + 0x10));
	le32(exp + 10, rel(DST + 9, 5, SRC + 5));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 5);
	EXPECT_CODE(&r, exp);
}

HD_TEST(jmp_rel8_widened_and_ends)
{
	struct hd_reloc r;
	/* mov %rdi,%rax; jmp .+0x12 -- a tail call: no jump back. */
	static const uint8_t seq[] = {0x48, 0x89, 0xf8, 0xeb, 0x10};
	uint8_t exp[8] = {0x48, 0x89, 0xf8, 0xe9};

	le32(exp + 4, rel(DST + 3, 5, SRC + 5 + 0x10));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 5, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 5);
	HD_EXPECT_EQ(r.jmp_back, 0);
	EXPECT_CODE(&r, exp);
}

HD_TEST(call_rel32_kept_a_call)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0xe8, 0x00, 0x01, 0x00, 0x00,
				      0x48, 0x85, 0xc0};
	uint8_t exp[10] = {0xe8, 0, 0, 0, 0, 0xe9};

	le32(exp + 1, rel(DST, 5, SRC + 5 + 0x100));
	le32(exp + 6, rel(DST + 5, 5, SRC + 5));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp);
}

HD_TEST(branch_back_to_entry_stays_in_trampoline)
{
	struct hd_reloc r;
	/* test %rdi,%rdi; je <entry>: a loop, not a second call. */
	static const uint8_t seq[] = {0x48, 0x85, 0xff, 0x74, 0xfb};
	uint8_t exp[14] = {0x48, 0x85, 0xff, 0x0f, 0x84, 0xf7, 0xff, 0xff,
			   0xff, 0xe9};

	le32(exp + 10, rel(DST + 9, 5, SRC + 5));
	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp);
}

HD_TEST(ret_then_padding_dl_debug_state)
{
	struct hd_reloc r;
	/* ret; data16 cs nopw 0x0(%rax,%rax,1) -- the function is 1 byte */
	static const uint8_t seq[] = {0xc3, 0x66, 0x66, 0x2e, 0x0f, 0x1f,
				      0x84, 0x00, 0x00, 0x00, 0x00, 0x00};
	uint8_t exp[1] = {0xc3};

	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 1, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 12);
	HD_EXPECT_EQ(r.ninsn, 1);
	HD_EXPECT_EQ(r.jmp_back, 0);
	EXPECT_CODE(&r, exp);
	HD_EXPECT_STREQ(r.text, "ret");
}

HD_TEST(ret_then_int3_padding)
{
	struct hd_reloc r;
	static const uint8_t seq[] = {0xc3};

	HD_ASSERT(build(seq, sizeof(seq), DST, 5, 1, &r) == 0);
	HD_EXPECT_EQ(r.displaced, 5);
	HD_EXPECT_EQ(r.len, 1);
}

HD_TEST(early_ret_refusals)
{
	struct hd_reloc r;
	static const uint8_t ret[] = {0xc3};
	static const uint8_t ret_code[] = {0xc3, 0x48, 0x89, 0xf8};
	int err;

	err = build(ret, sizeof(ret), DST, 5, 0, &r);
	EXPECT_REFUSED(err, &r, "function ends at +1, before 5 bytes, and its "
			"size is unknown");
	err = build(ret_code, sizeof(ret_code), DST, 5, 1, &r);
	EXPECT_REFUSED(err, &r, "function ends at +1, before 5 bytes, and +1 "
			"is not padding");
	/* A ret in the middle of a longer function: what follows is code. */
	err = build(ret, sizeof(ret), DST, 5, 20, &r);
	EXPECT_REFUSED(err, &r, "straight-line code ends at +1, before 5 "
			"bytes, inside the function");
}

HD_TEST(loop_and_jrcxz_refused)
{
	struct hd_reloc r;
	static const uint8_t loop[] = {0x48, 0xff, 0xc0, 0xe2, 0xfb};
	static const uint8_t jrcxz[] = {0xe3, 0x10};
	int err;

	err = build(loop, sizeof(loop), DST, 5, 0, &r);
	EXPECT_REFUSED(err, &r, "loop at +3 cannot be relocated: rel8 with no "
			"rel32 form");
	err = build(jrcxz, sizeof(jrcxz), DST, 5, 0, &r);
	EXPECT_REFUSED(err, &r, "jrcxz at +0 cannot be relocated: rel8 with "
			"no rel32 form");
}

HD_TEST(rip_dependent_instructions_refused)
{
	static const struct {
		uint8_t seq[8];
		size_t n;
		const char *why;
	} cases[] = {
		{{0x0f, 0x05}, 2, "syscall at +0 cannot be relocated: system "
		 "call from the trampoline"},
		{{0x90, 0xcc}, 2, "int3 at +1 cannot be relocated: trap "
		 "identified by its address"},
		{{0xcd, 0x80}, 2, "int at +0 cannot be relocated: trap "
		 "identified by its address"},
		{{0x0f, 0x0b}, 2, "ud2 at +0 cannot be relocated: deliberate "
		 "fault"},
		{{0xc7, 0xf8, 0x10, 0, 0, 0}, 6, "xbegin at +0 cannot be "
		 "relocated: transaction would span the agent"},
		{{0x0f, 0x20, 0xc0}, 3, "mov at +0 cannot be relocated: "
		 "privileged"},
		{{0x0f, 0x30}, 2, "wrmsr at +0 cannot be relocated: "
		 "privileged"},
		{{0xf4}, 1, "hlt at +0 cannot be relocated: privileged"},
		{{0x66, 0x0f, 0x84, 0x10, 0x00}, 5, "jz at +0: 66/67 prefix on "
		 "a relative branch"},
		{{0x67, 0x8b, 0x05, 0, 0, 0, 0}, 7, "mov at +0: eip-relative "
		 "operand"},
		{{0x06}, 1, "undecodable bytes at +0"},
	};

	for (size_t i = 0; i < HD_ARRAY_SIZE(cases); i++) {
		struct hd_reloc r;
		int err = build(cases[i].seq, cases[i].n, DST, 5, 0, &r);

		EXPECT_REFUSED(err, &r, cases[i].why);
	}
}

HD_TEST(branch_into_middle_refused)
{
	struct hd_reloc r;
	/* push %rbx; mov %rdi,%rbx; test %rbx,%rbx; jne <+1>; ret */
	uint8_t body[] = {0x53, 0x48, 0x89, 0xfb, 0x48, 0x85, 0xdb,
			  0x75, 0xf8, 0xc3};
	int err = build(body, sizeof(body), DST, 5, sizeof(body), &r);

	EXPECT_REFUSED(err, &r, "jnz at +7 branches to +1, inside the "
			"displaced bytes");
	/* The same branch to the entry itself is fine. */
	body[8] = 0xf7;
	HD_EXPECT_EQ(build(body, sizeof(body), DST, 5, sizeof(body), &r), 0);
	HD_EXPECT_EQ(r.displaced, 7);
	/* ... and to the first byte not displaced. */
	body[8] = 0xfe;
	HD_EXPECT_EQ(build(body, sizeof(body), DST, 5, sizeof(body), &r), 0);
}

HD_TEST(far_rel32_branch_into_middle_refused)
{
	struct hd_reloc r;
	uint8_t body[256];

	memset(body, 0x90, sizeof(body));
	memcpy(body, malloc_seq, sizeof(malloc_seq));
	body[200] = 0x0f; /* jne <+4> */
	body[201] = 0x85;
	le32(body + 202, 4 - 206);
	body[255] = 0xc3;
	EXPECT_REFUSED(build(body, sizeof(body), DST, 5, sizeof(body), &r), &r,
		       "jnz at +200 branches to +4, inside the displaced bytes");
	le32(body + 202, 7 - 206); /* to +7, the first byte not displaced */
	HD_EXPECT_EQ(build(body, sizeof(body), DST, 5, sizeof(body), &r), 0);
}

HD_TEST(undecodable_tail_scanned_bytewise)
{
	struct hd_reloc r;
	uint8_t body[32];

	memset(body, 0x90, sizeof(body));
	memcpy(body, malloc_seq, sizeof(malloc_seq));
	body[11] = 0x06; /* invalid in 64-bit mode */
	HD_EXPECT_EQ(build(body, sizeof(body), DST, 5, sizeof(body), &r), 0);
	body[14] = 0xeb; /* what might be jmp <+3> after it */
	body[15] = (uint8_t)(3 - 16);
	EXPECT_REFUSED(build(body, sizeof(body), DST, 5, sizeof(body), &r), &r,
		       "undecodable bytes at +11; a branch at +14 may land "
		       "inside the displaced bytes");
}

HD_TEST(displaced_past_function_end_refused)
{
	struct hd_reloc r;
	int err = build(malloc_seq, sizeof(malloc_seq), DST, 5, 4, &r);

	EXPECT_REFUSED(err, &r, "the function is 4 bytes, fewer than the 7 "
			"displaced");
}

HD_TEST(far_dst_absolute_jump_back)
{
	struct hd_reloc r;
	uint8_t exp[21] = {0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb,
			   0xff, 0x25, 0, 0, 0, 0};

	le64(exp + 13, SRC + 7);
	HD_ASSERT(build(malloc_seq, sizeof(malloc_seq), FAR, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp);
	HD_EXPECT_EQ(r.jmp_back, 7);
}

HD_TEST(far_dst_absolute_jcc_and_call)
{
	struct hd_reloc r;
	static const uint8_t jcc[] = {0x48, 0x85, 0xff, 0x0f, 0x84,
				      0xe6, 0x00, 0x00, 0x00};
	static const uint8_t call[] = {0xe8, 0x00, 0x01, 0x00, 0x00};
	/* test; jne .+16; jmp *0(%rip); .quad target; jmp *0(%rip); .quad */
	uint8_t exp_jcc[33] = {0x48, 0x85, 0xff, 0x75, 0x0e, 0xff, 0x25};
	/* call *2(%rip); jmp .+10; .quad target; jmp *0(%rip); .quad */
	uint8_t exp_call[30] = {0xff, 0x15, 0x02, 0, 0, 0, 0xeb, 0x08};

	le64(exp_jcc + 11, SRC + 9 + 0xe6);
	memcpy(exp_jcc + 19, "\xff\x25\0\0\0\0", 6);
	le64(exp_jcc + 25, SRC + 9);
	HD_ASSERT(build(jcc, sizeof(jcc), FAR, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp_jcc);
	HD_EXPECT_EQ(r.dst_off[1], 3);
	HD_EXPECT_EQ(r.jmp_back, 19);

	le64(exp_call + 8, SRC + 5 + 0x100);
	memcpy(exp_call + 16, "\xff\x25\0\0\0\0", 6);
	le64(exp_call + 22, SRC + 5);
	HD_ASSERT(build(call, sizeof(call), FAR, 5, 0, &r) == 0);
	EXPECT_CODE(&r, exp_call);
}

HD_TEST(limits_refused)
{
	struct hd_reloc r;
	uint8_t seq[32];
	int err;

	memset(seq, 0x90, sizeof(seq));
	err = build(seq, sizeof(seq), DST, 20, 0, &r);
	EXPECT_REFUSED(err, &r, "more than 16 instructions in 20 bytes");
	for (size_t i = 0; i < 16; i += 2) { /* je .+2, expanded to 16 */
		seq[i] = 0x74;
		seq[i + 1] = 0x00;
	}
	err = build(seq, 16, FAR, 16, 0, &r);
	EXPECT_REFUSED(err, &r, "trampoline exceeds 96 bytes at +12");
	err = hd_reloc_build(seq, 4, SRC, DST, 5, NULL, 0, &r);
	EXPECT_REFUSED(err, &r, "only 4 bytes of code for a 5-byte patch");
	err = hd_reloc_build(seq, 32, SRC, DST, 0, NULL, 0, &r);
	EXPECT_REFUSED(err, &r, "invalid patch length 0");
}

HD_TEST(text_truncated)
{
	struct hd_reloc r;
	uint8_t seq[70];

	for (size_t i = 0; i < 63; i += 7)
		memcpy(seq + i, "\x48\x8b\x05\x00\x00\x00\x00", 7);
	HD_ASSERT(build(seq, 63, DST, 60, 0, &r) == 0);
	HD_EXPECT_EQ(r.ninsn, 9);
	HD_EXPECT(strlen(r.text) < sizeof(r.text));
	HD_EXPECT(strlen(r.text) > 100);
	HD_EXPECT_STREQ(r.text + strlen(r.text) - 5, "; ...");
	/* Whole instructions only: 6 of 9 fit. */
	HD_EXPECT_STREQ(r.text, "mov (%rip), %rax; mov (%rip), %rax; "
			"mov (%rip), %rax; mov (%rip), %rax; mov (%rip), %rax; "
			"mov (%rip), %rax; ...");
}

HD_TEST(jmp5)
{
	uint8_t out[5];

	HD_ASSERT(hd_reloc_jmp5(out, 0x1000, 0x2000) == 0);
	HD_EXPECT(memcmp(out, "\xe9\xfb\x0f\x00\x00", 5) == 0);
	HD_ASSERT(hd_reloc_jmp5(out, 0x2000, 0x1000) == 0);
	HD_EXPECT(memcmp(out, "\xe9\xfb\xef\xff\xff", 5) == 0);
	HD_EXPECT_EQ(hd_reloc_jmp5(out, SRC, SRC + 5 + 0x7fffffffull), 0);
	HD_EXPECT(memcmp(out, "\xe9\xff\xff\xff\x7f", 5) == 0);
	HD_EXPECT_EQ(hd_reloc_jmp5(out, SRC, SRC + 5 + 0x80000000ull),
		     -HD_EINVAL);
	HD_EXPECT_EQ(hd_reloc_jmp5(out, SRC, SRC + 5 - 0x80000000ull), 0);
	HD_EXPECT_EQ(hd_reloc_jmp5(out, SRC, SRC + 4 - 0x80000000ull),
		     -HD_EINVAL);
}

HD_TEST(to_original)
{
	struct hd_reloc r;
	static const uint8_t free_seq[] = {0x48, 0x85, 0xff, 0x0f, 0x84,
					   0xe6, 0x00, 0x00, 0x00};

	HD_ASSERT(build(malloc_seq, sizeof(malloc_seq), DST, 5, 0, &r) == 0);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST), SRC);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST + 2), SRC + 2);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST + 4), SRC + 4);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST + 1), 0);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST + 7), SRC + 7);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, DST + 8), 0);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, DST, SRC), 0);
	/* Offsets differ once a branch is widened. */
	HD_ASSERT(build(free_seq, sizeof(free_seq), FAR, 5, 0, &r) == 0);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, FAR, FAR + 3), SRC + 3);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, FAR, FAR + 19), SRC + 9);
	HD_EXPECT_EQ(hd_reloc_to_original(&r, SRC, FAR, FAR + 5), 0);
}

/* ---- live: the real glibc entry points, run through trampolines ---- */

struct live {
	void *libc;	  /* dlopen handle of libc.so.6 */
	uint8_t *page;	  /* executable page for the trampolines */
	size_t used;
};

/* libc's r-xp mapping from /proc/self/maps. */
static uint64_t libc_text(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uint64_t start = 0;

	HD_ASSERT(f);
	while (!start && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char perms[5];

		if (strstr(line, "/libc.so.6") &&
		    sscanf(line, "%llx-%llx %4s", &s, &e, perms) == 3 &&
		    perms[2] == 'x')
			start = s;
	}
	fclose(f);
	HD_ASSERT(start);
	return start;
}

/* A free page at `near` +- 64 MiB steps (within 1 GiB), or, with far set,
 * at least 8 GiB from it. */
static uint8_t *map_page(uint64_t near, bool far)
{
	for (uint64_t step = 1; step <= 16; step++) {
		uint64_t d = step * (far ? (8ull << 30) : (64ull << 20));
		uint64_t at[2] = {near - d, near + d};

		for (int i = 0; i < 2; i++) {
			void *p = mmap((void *)(uintptr_t)at[i], 4096,
				       PROT_READ | PROT_WRITE | PROT_EXEC,
				       MAP_PRIVATE | MAP_ANONYMOUS |
					       MAP_FIXED_NOREPLACE,
				       -1, 0);

			if (p == (void *)(uintptr_t)at[i])
				return p;
			if (p != MAP_FAILED)
				munmap(p, 4096);
		}
	}
	HD_FAIL_AT("no free page %s libc", far ? "far from" : "near");
	_exit(1);
}

static void live_init(struct live *l, bool far)
{
	l->libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	HD_ASSERT(l->libc);
	l->page = map_page(libc_text(), far);
	l->used = 0;
}

/* Size of the function at `addr` from its object's .symtab or .dynsym,
 * 0 if no symbol starts there (an IFUNC's chosen implementation in a
 * stripped libc, say). */
static size_t func_size(const void *addr)
{
	Dl_info info;
	struct link_map *lm = NULL;
	size_t size = 0;
	Elf *elf;
	Elf_Scn *scn = NULL;
	int fd;

	HD_ASSERT(dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm);
	HD_ASSERT(elf_version(EV_CURRENT) != EV_NONE);
	fd = open(info.dli_fname, O_RDONLY | O_CLOEXEC);
	HD_ASSERT(fd >= 0);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	HD_ASSERT(elf);
	while (!size && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    !sh.sh_entsize || !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;

			if (gelf_getsym(d, (int)i, &sym) &&
			    GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
			    lm->l_addr + sym.st_value == (uintptr_t)addr) {
				size = sym.st_size;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return size;
}

/* Relocates `name` from libc (or `fn` if given) into the page and
 * returns the trampoline's address. */
static void *relocate_live(struct live *l, const char *name, void *fn)
{
	struct hd_reloc r;
	const uint8_t *src = fn ? fn : dlsym(l->libc, name);
	size_t size;
	uint8_t *dst = l->page + l->used;
	int err;

	HD_ASSERT(src);
	if (!fn) { /* glibc's own code, even under ASan */
		Dl_info info;

		HD_ASSERT(dladdr(src, &info) && info.dli_fname);
		HD_EXPECT(strstr(info.dli_fname, "/libc.so.6"));
	}
	size = func_size(src);
	err = hd_reloc_build(src, 5 + HD_RELOC_LOOKAHEAD, (uintptr_t)src,
			     (uintptr_t)dst, 5, size ? src : NULL, size, &r);
	if (err) {
		HD_FAIL_AT("%s: %s", name, r.why);
		_exit(1);
	}
	fprintf(stderr, "  %s (%zu bytes): %s -> %zu bytes\n", name, size,
		r.text, r.len);
	HD_ASSERT(l->used + r.len + 16 <= 4096);
	memcpy(dst, r.code, r.len);
	l->used += (r.len + 15) & ~(size_t)15;
	/* The trampoline runs only the displaced instructions' copies. */
	HD_EXPECT_EQ(hd_reloc_to_original(&r, (uintptr_t)src, (uintptr_t)dst,
					  (uintptr_t)dst), (uintptr_t)src);
	return dst;
}

/* Function pointers from object pointers, as dlsym's users do. */
#define AS_FN(type, p) ((type)(uintptr_t)(p))

static void exercise_allocator(struct live *l)
{
	void *(*m)(size_t) = AS_FN(void *(*)(size_t),
				   relocate_live(l, "malloc", NULL));
	void (*f)(void *) = AS_FN(void (*)(void *),
				  relocate_live(l, "free", NULL));
	void *(*c)(size_t, size_t) = AS_FN(void *(*)(size_t, size_t),
					   relocate_live(l, "calloc", NULL));
	void *(*re)(void *, size_t) = AS_FN(void *(*)(void *, size_t),
					    relocate_live(l, "realloc", NULL));
	unsigned char *p = m(100), *q;

	HD_ASSERT(p);
	memset(p, 0xab, 100);
	q = re(p, 100000);
	HD_ASSERT(q);
	for (int i = 0; i < 100; i++)
		HD_EXPECT_EQ(q[i], 0xab);
	memset(q, 0x5a, 100000);
	f(q);
	p = c(1000, 10);
	HD_ASSERT(p);
	for (int i = 0; i < 10000; i++)
		if (p[i] != 0) {
			HD_FAIL_AT("calloc byte %d is %d", i, p[i]);
			break;
		}
	f(p);
	f(NULL); /* free's first branch, relocated */
	for (int i = 0; i < 1000; i++) /* the tcache and arena paths */
		f(m((size_t)i * 37));
}

HD_TEST(live_glibc_near)
{
	struct live l;
	int (*pm)(void **, size_t, size_t);
	void *(*ma)(size_t, size_t);
	size_t (*sl)(const char *);
	void *(*mc)(void *, const void *, size_t);
	void (*ds)(void);
	void (*f)(void *);
	void *p = NULL;
	char buf[64];

	live_init(&l, false);
	exercise_allocator(&l);
	f = AS_FN(void (*)(void *), relocate_live(&l, "free", NULL));
	pm = AS_FN(int (*)(void **, size_t, size_t),
		   relocate_live(&l, "posix_memalign", NULL));
	HD_ASSERT(pm(&p, 256, 1000) == 0 && p);
	HD_EXPECT_EQ((uintptr_t)p % 256, 0);
	memset(p, 1, 1000);
	f(p);
	HD_EXPECT_EQ(pm(&p, 3, 10), EINVAL);
	ma = AS_FN(void *(*)(size_t, size_t),
		   relocate_live(&l, "memalign", NULL));
	p = ma(4096, 10);
	HD_ASSERT(p);
	HD_EXPECT_EQ((uintptr_t)p % 4096, 0);
	f(p);
	sl = AS_FN(size_t (*)(const char *), relocate_live(&l, "strlen", NULL));
	HD_EXPECT_EQ(sl("hello, trampoline"), 17);
	HD_EXPECT_EQ(sl(""), 0);
	mc = AS_FN(void *(*)(void *, const void *, size_t),
		   relocate_live(&l, "memcpy", NULL));
	memset(buf, 0, sizeof(buf));
	HD_EXPECT(mc(buf, "copied through a trampoline", 28) == buf);
	HD_EXPECT_STREQ(buf, "copied through a trampoline");
	/* ld.so's _dl_debug_state: ret and padding, a 1-byte function. */
	ds = AS_FN(void (*)(void), relocate_live(&l, "_dl_debug_state",
		   dlsym(RTLD_DEFAULT, "_dl_debug_state")));
	ds();
}

HD_TEST(live_glibc_far)
{
	struct live l;

	/* More than 2 GiB from libc: the jump back and free's je take their
	 * absolute forms (malloc, calloc and realloc have no rip-relative
	 * operand in their first 5 bytes on glibc 2.36; elsewhere this may
	 * be refused, which the failure message would say). */
	live_init(&l, true);
	exercise_allocator(&l);
}

int main(void)
{
	return hd_test_main();
}
