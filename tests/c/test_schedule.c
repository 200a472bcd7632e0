/* test_schedule.c — schedule formulas against hand values and numpy (values printed by
 * numpy 1.x / the formulas in qd_random.h; numpy's linspace is start + i*step with the last
 * value set to stop, which qd follows bitwise), clipping, alpha_bar, and parameter errors. */
#include "harness.h"
#include "qd_random.h"
#include <math.h>
#include <string.h>

QD_TEST(schedule_linear)
{
    double v[40];
    qd_err e;
    CHECK(qd_schedule_linear(v, 20, 1, 4, &e) == QD_OK, "linear ok");
    /* numpy.linspace(1, 4, 20)[[0, 1, 7, 19]] */
    CHECK(v[0] == 1.0 && v[1] == 1.1578947368421053 && v[7] == 2.1052631578947367 && v[19] == 4.0,
          "linspace(1, 4, 20) bitwise: %.17g %.17g %.17g", v[1], v[7], v[19]);
    qd_schedule_linear(v, 12, 0.05, 1, &e);
    CHECK(v[1] == 0.13636363636363635 && v[5] == 0.4818181818181818 && v[11] == 1.0,
          "linspace(0.05, 1, 12) bitwise");
    qd_schedule_linear(v, 1, 2.5, 4, &e);
    CHECK(v[0] == 2.5, "T = 1 gives from (numpy.linspace(a, b, 1) = [a])");
    CHECK(qd_schedule_linear(v, 0, 1, 2, &e) == QD_EARG && strstr(e.msg, "T >= 1") != NULL,
          "T = 0 rejected: %s", e.msg);
    CHECK(qd_schedule_linear(v, 3, NAN, 2, &e) == QD_EARG, "NaN rejected");
}

QD_TEST(schedule_quadratic_geometric)
{
    double v[40];
    qd_err e;
    /* QuDDPM circle task: h_s = 1e-3 s^2, s = 1..40 */
    CHECK(qd_schedule_quadratic(v, 40, 1e-3, 1e-3 * 1600, &e) == QD_OK, "quadratic ok");
    double worst = 0;
    for (int s = 1; s <= 40; s++) {
        double r = fabs(v[s - 1] - 1e-3 * s * s) / (1e-3 * s * s);
        worst = r > worst ? r : worst;
    }
    CHECK(worst < 1e-14, "quadratic{from = c, to = c T^2} = c t^2 (rel %g)", worst);
    CHECK(v[0] == 1e-3 && v[39] == 1.6, "exact endpoints");
    CHECK(qd_schedule_quadratic(v, 4, -1, 1, &e) == QD_EARG && strstr(e.msg, ">= 0"), "negative rejected");
    CHECK(qd_schedule_geometric(v, 5, 0.01, 1, &e) == QD_OK, "geometric ok");
    /* numpy.geomspace(0.01, 1, 5) */
    double ref[5] = {0.01, 0.03162277660168379, 0.09999999999999999, 0.31622776601683794, 1.0};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(v[i] / ref[i], 1.0, 1e-15, "geomspace(0.01, 1, 5)");
    CHECK(qd_schedule_geometric(v, 5, 0, 1, &e) == QD_EARG && strstr(e.msg, "> 0"), "from = 0 rejected");
}

QD_TEST(schedule_cosine)
{
    double v[10];
    qd_err e;
    CHECK(qd_schedule_cosine(v, 10, 0.008, 0.999, &e) == QD_OK, "cosine ok");
    /* numpy: f(t) = cos((t/T + s)/(1 + s) pi/2)^2, abar = f/f(0), beta = min(1 - abar_t/abar_{t-1}, 0.999) */
    double ref[10] = {0.027907262886031292, 0.07549363729672232, 0.1243959863690487, 0.1771895254015734,
                      0.237281530190525, 0.3098834401085724, 0.4040031430396753, 0.5369981776428852,
                      0.7438293668954272, 0.999};
    double worst = 0;
    for (int i = 0; i < 10; i++)
        worst = fabs(v[i] - ref[i]) > worst ? fabs(v[i] - ref[i]) : worst;
    CHECK(worst < 1e-14, "Nichol-Dhariwal cosine betas (max diff %g)", worst);
    /* alpha_bar(t) = prod (1 - beta) = f(t)/f(0) before clipping kicks in */
    double f0 = pow(cos(M_PI / 2 * 0.008 / 1.008), 2), f5 = pow(cos(M_PI / 2 * (0.5 + 0.008) / 1.008), 2);
    CHECK_NEAR(qd_schedule_alpha_bar(v, 5), f5 / f0, 1e-14, "alpha_bar(5) = f(5)/f(0)");
    CHECK(qd_schedule_alpha_bar(v, 0) == 1.0, "alpha_bar(0) = 1");
    CHECK(qd_schedule_cosine(v, 10, -0.1, 0.999, &e) == QD_EARG, "negative offset rejected");
    CHECK(qd_schedule_cosine(v, 10, 0.008, 1.5, &e) == QD_EARG, "max_beta > 1 rejected");
}

QD_TEST(schedule_sq_cosine_clip)
{
    double v[8];
    qd_err e;
    CHECK(qd_schedule_sq_cosine(v, 8, 0.1, 2.0, &e) == QD_OK, "sq_cosine ok");
    int ok = 1;
    for (int t = 1; t < 8; t++) {
        double x = sin(M_PI * t / 16.0);
        ok &= fabs(v[t - 1] - (0.1 + 1.9 * x * x)) < 1e-15;
    }
    CHECK(ok && v[7] == 2.0, "sq_cosine = from + (to - from) sin^2(pi t / 2T)");
    CHECK(v[0] > 0.1 && v[0] < 0.2 && v[3] > 0.9 && v[3] < 1.1, "sq_cosine hand values (t=1: %g, t=4: %g = 1.05)",
          v[0], v[3]);
    CHECK_NEAR(v[3], 1.05, 1e-15, "sq_cosine(T=8) at t=4 is the midpoint");
    qd_schedule_clip(v, 8, 0.5, 1.5);
    CHECK(v[0] == 0.5 && v[7] == 1.5 && fabs(v[3] - 1.05) < 1e-15, "clip clamps into [lo, hi]");
    double b[3] = {0.1, 0.2, 0.5};
    CHECK_NEAR(qd_schedule_alpha_bar(b, 3), 0.9 * 0.8 * 0.5, 1e-16, "alpha_bar = prod(1 - beta)");
}
