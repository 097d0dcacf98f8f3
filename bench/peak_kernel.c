/* Peak multiply-add rate of this CPU, without a GEMM library: independent chains of vector
 * multiply-adds that live in registers (no memory traffic), one team per thread (OpenMP).
 * Built by bench/forward.py at bench time: gcc -O2 -march=native -fopenmp -shared -fPIC.
 *
 * fp32:  acc = acc * m + c on GCC vector types (vfmadd231ps with -march=native: 8 lanes on AVX2,
 *        16 on AVX-512); CHAINS independent accumulators cover the FMA latency (4 cycles) x 2 ports.
 * bf16:  VDPBF16PS (AVX512_BF16): 32 bf16 pairs -> 16 fp32 sums per instruction.
 * int8:  VNNI VPDPBUSD where present (4 u8 x s8 products per 32-bit lane); else the AVX2 sequence
 *        ONNX Runtime's MLAS and OpenVINO use: VPMADDUBSW + VPMADDWD(ones) + VPADDD.
 * Each function returns multiply-adds done (per thread summed); the caller times it.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>

#define CHAINS 12
/* results go here, so the compiler cannot drop the chains as dead code */
volatile double g_sink;
/* CHAINS accumulators as separate variables (an array would be kept in memory) */
#define ACC_DECL(init) x0 = init, x1 = init, x2 = init, x3 = init, x4 = init, x5 = init, \
    x6 = init, x7 = init, x8 = init, x9 = init, x10 = init, x11 = init
#define ACC_ONE(stmt, v) { __typeof__(v) x = v; stmt; v = x; }
#define ACC_STEP(stmt) do { ACC_ONE(stmt, x0) ACC_ONE(stmt, x1) ACC_ONE(stmt, x2) ACC_ONE(stmt, x3) \
    ACC_ONE(stmt, x4) ACC_ONE(stmt, x5) ACC_ONE(stmt, x6) ACC_ONE(stmt, x7) ACC_ONE(stmt, x8) \
    ACC_ONE(stmt, x9) ACC_ONE(stmt, x10) ACC_ONE(stmt, x11) } while (0)
#define ACC_SUM(add) add(add(add(add(x0, x1), add(x2, x3)), add(add(x4, x5), add(x6, x7))), \
    add(add(x8, x9), add(x10, x11)))

#if defined(__AVX512F__)
typedef float vf __attribute__((vector_size(64)));
#define LANES 16
#else
typedef float vf __attribute__((vector_size(32)));
#define LANES 8
#endif

int lanes_fp32(void) { return LANES; }

double fma_fp32(long iters, int threads, float seed) {
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+:total)
    {
        vf m, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
        for (int l = 0; l < LANES; l++) {
            m[l] = 0.999999f; c[l] = seed * 1e-7f;
            a0[l] = seed + l; a1[l] = a0[l] + 1; a2[l] = a0[l] + 2; a3[l] = a0[l] + 3;
            a4[l] = a0[l] + 4; a5[l] = a0[l] + 5; a6[l] = a0[l] + 6; a7[l] = a0[l] + 7;
            a8[l] = a0[l] + 8; a9[l] = a0[l] + 9; a10[l] = a0[l] + 10; a11[l] = a0[l] + 11;
        }
        for (long it = 0; it < iters; it++) {
            a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
            a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
            a8 = a8 * m + c; a9 = a9 * m + c; a10 = a10 * m + c; a11 = a11 * m + c;
        }
        vf sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
        float s = 0;
        for (int l = 0; l < LANES; l++) s += sum[l];
        g_sink += s;
        total += (double)iters * CHAINS * LANES;
    }
    return total;
}

int has_bf16(void) {
#if defined(__AVX512BF16__)
    return 1;
#else
    return 0;
#endif
}

double dot_bf16(long iters, int threads) {
    double total = 0;
#if defined(__AVX512BF16__)
#pragma omp parallel num_threads(threads) reduction(+:total)
    {
        __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
        __m512 ACC_DECL(_mm512_set1_ps(1.0f));
        for (long it = 0; it < iters; it++) {
            ACC_STEP(x = _mm512_dpbf16_ps(x, a, b));
        }
        __m512 sum = ACC_SUM(_mm512_add_ps);
        g_sink += _mm512_reduce_add_ps(sum);
        total += (double)iters * CHAINS * 32;
    }
#else
    (void)iters; (void)threads;
#endif
    return total;
}

int int8_kind(void) {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
    return 3;
#elif defined(__AVXVNNI__)
    return 2;
#elif defined(__AVX2__)
    return 1;
#else
    return 0;
#endif
}

double dot_int8(long iters, int threads) {
    double total = 0;
#if defined(__AVX2__)
#pragma omp parallel num_threads(threads) reduction(+:total)
    {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
        __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
        __m512i ACC_DECL(_mm512_set1_epi32(1));
        for (long it = 0; it < iters; it++) {
            ACC_STEP(x = _mm512_dpbusd_epi32(x, a, b));
        }
        g_sink += _mm512_reduce_add_epi32(ACC_SUM(_mm512_add_epi32));
        const double per = 64;
#else
        __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
        __m256i ACC_DECL(_mm256_set1_epi32(1));
        for (long it = 0; it < iters; it++) {
#if defined(__AVXVNNI__)
            ACC_STEP(x = _mm256_dpbusd_avx_epi32(x, a, b));
#else
            /* a fresh product per chain, as in a real kernel (b changes every step there) */
            ACC_STEP(x = _mm256_add_epi32(x, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones)); \
                     __asm__ volatile("" : "+x"(b)));
#endif
        }
        __m256i sum = ACC_SUM(_mm256_add_epi32);
        g_sink += _mm256_extract_epi32(sum, 0);
        const double per = 32;
#endif
        total += (double)iters * CHAINS * per;
    }
#else
    (void)iters; (void)threads;
#endif
    return total;
}
