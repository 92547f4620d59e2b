//! Purchase histories drawn from the BG/NBD and Gamma-Gamma models with known parameters: the
//! data the lifetime-value tests fit (and `lifetimes` fits the same, see
//! `tests/data/clv/lifetimes_expected.py`) and the fit benchmark.

pub mod clv_data {
    //! The generator. Its own samplers, seeded: the same seed gives the same histories on every
    //! platform (the checked-in file is compared with a fresh draw).

    use crate::analytics::{BgNbd, GammaGamma, PurchaseHistory};
    use crate::testing::sales_data::Rng;

    /// The parameters the test data is drawn from (time in weeks).
    pub const TRUE_PURCHASES: BgNbd = BgNbd { r: 0.25, alpha: 4.0, a: 0.8, b: 2.5 };
    /// The spend parameters the test data is drawn from.
    pub const TRUE_SPEND: GammaGamma = GammaGamma { p: 6.0, q: 4.0, v: 15.0 };

    struct Draw(Rng);

    impl Draw {
        /// Uniform on (0, 1).
        fn uniform(&mut self) -> f64 {
            (self.0.below(1 << 53) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }

        /// Gamma(shape, rate) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)).
        fn gamma(&mut self, shape: f64, rate: f64) -> f64 {
            if shape < 1.0 {
                let u = self.uniform();
                return self.gamma(shape + 1.0, rate) * u.powf(1.0 / shape);
            }
            let d = shape - 1.0 / 3.0;
            let c = 1.0 / (9.0 * d).sqrt();
            loop {
                let x = self.normal();
                let v = (1.0 + c * x).powi(3);
                if v <= 0.0 {
                    continue;
                }
                let u = self.uniform();
                if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                    return d * v / rate;
                }
            }
        }

        fn beta(&mut self, a: f64, b: f64) -> f64 {
            let x = self.gamma(a, 1.0);
            x / (x + self.gamma(b, 1.0))
        }
    }

    /// `n` customers observed for 20–78 weeks since their first purchase: purchase rates
    /// Gamma(r, α), leaving after each repeat purchase with a Beta(a, b) chance, each purchase's
    /// value Gamma(p, ν) with ν Gamma(q, v) — times and values rounded to 1/1000, as an ERP
    /// export would carry them.
    pub fn histories(n: usize, seed: u64) -> Vec<PurchaseHistory> {
        let (m, s) = (TRUE_PURCHASES, TRUE_SPEND);
        let mut draw = Draw(Rng::new(seed));
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        (0..n)
            .map(|_| {
                let age = round(20.0 + draw.uniform() * 58.0);
                let rate = draw.gamma(m.r, m.alpha);
                let leave = draw.beta(m.a, m.b);
                let nu = draw.gamma(s.q, s.v);
                let (mut t, mut x, mut last, mut spent) = (0.0, 0u32, 0.0, 0.0);
                loop {
                    t += -draw.uniform().ln() / rate;
                    if round(t) > age || round(t) <= last {
                        break;
                    }
                    x += 1;
                    last = round(t);
                    spent += round(draw.gamma(s.p, nu).max(0.001));
                    if draw.uniform() < leave {
                        break;
                    }
                }
                let monetary = if x > 0 { round(spent / f64::from(x)).max(0.001) } else { 0.0 };
                PurchaseHistory { frequency: x, recency: last, age, monetary }
            })
            .collect()
    }

    /// The histories as the CSV the `lifetimes` script reads: `frequency,recency,T,monetary_value`.
    pub fn to_csv(histories: &[PurchaseHistory]) -> String {
        let mut out = String::from("frequency,recency,T,monetary_value\n");
        for h in histories {
            out.push_str(&format!("{},{},{},{}\n", h.frequency, h.recency, h.age, h.monetary));
        }
        out
    }
}
