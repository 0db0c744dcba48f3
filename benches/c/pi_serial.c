/* The serial C loop every `pi-*` program is compared with: the sum of
 * 1/(2k+1)^2 for k < N in one process, then sqrt(8 * sum), printed. The bench
 * times the whole program, as it times the pi-* programs and their ports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    double s = 0.0;
    for (long k = 0; k < n; k++) {
        double d = 2.0 * k + 1.0;
        s += 1.0 / (d * d);
    }
    printf("%.16g\n", sqrt(8.0 * s));
    return 0;
}
