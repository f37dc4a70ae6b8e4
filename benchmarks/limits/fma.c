/* The CPU's float32 FMA rate: 10 independent AVX2 FMA chains per thread, registers only.
   gcc -O2 -mavx2 -mfma -pthread benchmarks/limits/fma.c -o /tmp/fma && /tmp/fma 1 && /tmp/fma 2 */
#include <stdlib.h>
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
#define ITERS 200000000L
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void* work(void* arg){
  __m256 a0=_mm256_set1_ps(1.0f),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,a8=a0,a9=a0;
  const __m256 m=_mm256_set1_ps(0.999999f), c=_mm256_set1_ps(1e-7f);
  for(long i=0;i<ITERS;i++){
    a0=_mm256_fmadd_ps(a0,m,c);a1=_mm256_fmadd_ps(a1,m,c);a2=_mm256_fmadd_ps(a2,m,c);a3=_mm256_fmadd_ps(a3,m,c);a4=_mm256_fmadd_ps(a4,m,c);
    a5=_mm256_fmadd_ps(a5,m,c);a6=_mm256_fmadd_ps(a6,m,c);a7=_mm256_fmadd_ps(a7,m,c);a8=_mm256_fmadd_ps(a8,m,c);a9=_mm256_fmadd_ps(a9,m,c);
  }
  __m256 s=_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0,a1),_mm256_add_ps(a2,a3)),_mm256_add_ps(_mm256_add_ps(a4,a5),_mm256_add_ps(_mm256_add_ps(a6,a7),_mm256_add_ps(a8,a9))));
  float out[8]; _mm256_storeu_ps(out,s); *(float*)arg=out[0]; return NULL;
}
int main(int argc,char**argv){
  int n=argc>1?atoi(argv[1]):2; pthread_t t[8]; float r[8];
  double t0=now(); for(int i=0;i<n;i++) pthread_create(&t[i],0,work,&r[i]); for(int i=0;i<n;i++) pthread_join(t[i],0);
  double dt=now()-t0; printf("%d threads: %.1f GFLOP/s (fp32 FMA, AVX2)\n", n, n*ITERS*10.0*8*2/dt/1e9); return 0;}
