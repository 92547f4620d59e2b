//! Labelled person records for record-linkage quality (issue 19).

pub mod person_data {
    //! Deterministic people in the shape of FEBRL's generated data sets (given name, surname,
    //! street number, two address lines, locality, postcode, state, date of birth, an identity
    //! number), written in Latin script (English names, Australian-style addresses, as FEBRL's)
    //! or in Chinese (names, streets, districts and provinces, 18-character resident identity
    //! numbers with their check digit). A share of them is entered again with the errors people
    //! and OCR make: typos, transposed, dropped and inserted characters, OCR confusions,
    //! nicknames, given name and surname swapped, day and month of birth swapped or the year off
    //! by one, missing values. Every record carries the label of the person it stands for;
    //! [`linked`] makes two files with one-to-one matches.
    //!
    //! Empty text is a missing value, as in FEBRL's files.

    use std::collections::HashMap;
    use std::fmt::Write as _;

    use uuid::Uuid;

    use crate::custom_field::CustomValue;
    use crate::dedup::{Blocking, IdScheme, MatchProfile, Pairs, recall_ceiling};
    use crate::testing::sales_data::Rng;
    use crate::{CustomerId, CustomerKind, IdNumber};

    /// How people's names and addresses are written.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Script {
        /// English names, Australian-style addresses (FEBRL's shape).
        Latin,
        /// Chinese names and addresses.
        Chinese,
    }

    impl Script {
        /// The lower-case name (`latin`, `chinese`).
        pub fn as_str(self) -> &'static str {
            match self {
                Script::Latin => "latin",
                Script::Chinese => "chinese",
            }
        }
    }

    /// One person record as entered; empty text is a missing value.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Person {
        /// Given name.
        pub given_name: String,
        /// Surname.
        pub surname: String,
        /// Street number.
        pub street_number: String,
        /// First address line (street).
        pub address_1: String,
        /// Second address line (building, unit).
        pub address_2: String,
        /// Suburb, town or district.
        pub locality: String,
        /// Postcode.
        pub postcode: String,
        /// State or province.
        pub state: String,
        /// Date of birth, `YYYYMMDD`.
        pub date_of_birth: String,
        /// Identity number.
        pub id_number: String,
    }

    /// Records and the label of the person each stands for.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Labelled {
        /// The records.
        pub records: Vec<Person>,
        /// `labels[i]` is the person `records[i]` stands for.
        pub labels: Vec<u64>,
    }

    const LATIN_GIVEN: [(&str, &str); 40] = [
        ("robert", "bob"),
        ("william", "bill"),
        ("elizabeth", "liz"),
        ("margaret", "maggie"),
        ("james", "jim"),
        ("jennifer", "jenny"),
        ("michael", "mike"),
        ("katherine", "kate"),
        ("richard", "dick"),
        ("patricia", "pat"),
        ("thomas", "tom"),
        ("deborah", "debbie"),
        ("christopher", "chris"),
        ("samantha", "sam"),
        ("daniel", "dan"),
        ("rebecca", "becky"),
        ("matthew", "matt"),
        ("jessica", "jess"),
        ("anthony", "tony"),
        ("alexandra", "alex"),
        ("joshua", "josh"),
        ("victoria", "vicky"),
        ("benjamin", "ben"),
        ("charlotte", "charlie"),
        ("nicholas", "nick"),
        ("isabella", "bella"),
        ("jonathan", "jon"),
        ("abigail", "abby"),
        ("zachary", "zach"),
        ("natalie", "nat"),
        ("liam", "liam"),
        ("chloe", "chloe"),
        ("lachlan", "lachie"),
        ("emily", "em"),
        ("mitchell", "mitch"),
        ("olivia", "liv"),
        ("jackson", "jack"),
        ("madison", "maddy"),
        ("harrison", "harry"),
        ("georgia", "george"),
    ];
    const LATIN_SURNAMES: [&str; 40] = [
        "smith",
        "jones",
        "williams",
        "brown",
        "wilson",
        "taylor",
        "johnson",
        "white",
        "martin",
        "anderson",
        "thompson",
        "nguyen",
        "thomas",
        "walker",
        "harris",
        "lee",
        "ryan",
        "robinson",
        "kelly",
        "king",
        "davis",
        "wright",
        "evans",
        "roberts",
        "green",
        "hall",
        "wood",
        "jackson",
        "clarke",
        "patel",
        "khan",
        "lewis",
        "james",
        "phillips",
        "mason",
        "mitchell",
        "rose",
        "davies",
        "rodriguez",
        "campbell",
    ];
    const LATIN_STREETS: [&str; 24] = [
        "george",
        "victoria",
        "church",
        "high",
        "king",
        "queen",
        "william",
        "elizabeth",
        "albert",
        "park",
        "station",
        "railway",
        "river",
        "bridge",
        "mill",
        "hill",
        "chapel",
        "grove",
        "beach",
        "ocean",
        "forest",
        "spring",
        "garden",
        "cedar",
    ];
    const LATIN_SUFFIXES: [&str; 6] = ["street", "road", "avenue", "place", "crescent", "drive"];
    const LATIN_UNITS: [&str; 6] = ["", "", "", "unit 4", "flat 12", "rosedale house"];
    const LATIN_LOCALITIES: [&str; 24] = [
        "parramatta",
        "bondi",
        "manly",
        "st kilda",
        "fitzroy",
        "carlton",
        "toowong",
        "fortitude valley",
        "fremantle",
        "subiaco",
        "glenelg",
        "norwood",
        "sandy bay",
        "battery point",
        "braddon",
        "kingston",
        "woden",
        "belconnen",
        "darwin city",
        "palmerston",
        "geelong",
        "ballarat",
        "wollongong",
        "newcastle",
    ];
    const LATIN_STATES: [&str; 8] = ["nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"];

    // The Chinese names and roads of the company set, so both read alike.
    use crate::testing::dedup_data::{
        GIVEN as CN_GIVEN, ROADS as CN_ROADS, SURNAMES as CN_SURNAMES, chars, pick, pick_char,
    };
    const CN_ESTATES: [&str; 8] = ["", "", "幸福小区3栋", "阳光花园2单元", "锦绣家园5号楼", "翠苑一区", "", "金色港湾"];
    const CN_DISTRICTS: [&str; 12] = [
        "朝阳区",
        "海淀区",
        "南山区",
        "福田区",
        "西湖区",
        "高新区",
        "江北区",
        "历下区",
        "武侯区",
        "鼓楼区",
        "天河区",
        "雁塔区",
    ];
    const CN_PROVINCES: [(&str, &str); 8] = [
        ("北京市", "110105"),
        ("广东省", "440305"),
        ("浙江省", "330106"),
        ("山东省", "370102"),
        ("四川省", "510107"),
        ("江苏省", "320106"),
        ("湖北省", "420106"),
        ("陕西省", "610113"),
    ];
    /// Characters OCR and hurried typists confuse.
    const CN_LOOKALIKES: [(char, char); 10] = [
        ('己', '已'),
        ('未', '末'),
        ('土', '士'),
        ('王', '玉'),
        ('日', '曰'),
        ('人', '入'),
        ('大', '太'),
        ('明', '朋'),
        ('杨', '扬'),
        ('晨', '辰'),
    ];
    const LATIN_LOOKALIKES: [(&str, &str); 8] =
        [("0", "o"), ("1", "l"), ("5", "s"), ("8", "b"), ("m", "rn"), ("cl", "d"), ("vv", "w"), ("h", "li")];

    fn date_of_birth(rng: &mut Rng) -> String {
        format!("{}{:02}{:02}", 1930 + rng.below(76), 1 + rng.below(12), 1 + rng.below(28))
    }

    fn person(script: Script, rng: &mut Rng) -> Person {
        let dob = date_of_birth(rng);
        match script {
            Script::Latin => Person {
                given_name: LATIN_GIVEN[rng.below(LATIN_GIVEN.len() as u64) as usize].0.to_owned(),
                surname: pick(rng, &LATIN_SURNAMES).to_owned(),
                street_number: (1 + rng.below(300)).to_string(),
                address_1: format!("{} {}", pick(rng, &LATIN_STREETS), pick(rng, &LATIN_SUFFIXES)),
                address_2: pick(rng, &LATIN_UNITS).to_owned(),
                locality: pick(rng, &LATIN_LOCALITIES).to_owned(),
                postcode: format!("{}", 2000 + rng.below(6000)),
                state: pick(rng, &LATIN_STATES).to_owned(),
                id_number: format!("{:07}", rng.below(10_000_000)),
                date_of_birth: dob,
            },
            Script::Chinese => {
                let (province, region) = CN_PROVINCES[rng.below(CN_PROVINCES.len() as u64) as usize];
                let first17 = format!("{region}{dob}{:03}", rng.below(1000));
                let (given_pool, surnames) = (chars(CN_GIVEN), chars(CN_SURNAMES));
                let given: String = (0..1 + rng.below(2)).map(|_| pick_char(rng, &given_pool)).collect();
                Person {
                    given_name: given,
                    surname: pick_char(rng, &surnames).to_string(),
                    street_number: format!("{}号", 1 + rng.below(300)),
                    address_1: pick(rng, &CN_ROADS).to_owned(),
                    address_2: pick(rng, &CN_ESTATES).to_owned(),
                    locality: pick(rng, &CN_DISTRICTS).to_owned(),
                    postcode: format!("{}", 100_000 + rng.below(800_000)),
                    state: province.to_owned(),
                    id_number: format!("{first17}{}", char::from(IdNumber::check_char(first17.as_bytes()))),
                    date_of_birth: dob,
                }
            }
        }
    }

    /// A typo: one character replaced, inserted or dropped, or two neighbours transposed.
    fn typo(rng: &mut Rng, s: &str, script: Script) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        if chars.is_empty() {
            return s.to_owned();
        }
        let i = rng.below(chars.len() as u64) as usize;
        let other = || match script {
            Script::Latin => char::from(b'a' + (i as u8 * 7 + chars.len() as u8) % 26),
            Script::Chinese => CN_GIVEN.chars().nth((i * 7 + chars.len()) % 40).unwrap_or('明'),
        };
        match rng.below(4) {
            0 => chars[i] = other(),
            1 => chars.insert(i, other()),
            2 if chars.len() > 1 => {
                chars.remove(i);
            }
            _ if chars.len() > 1 => {
                let j = if i + 1 < chars.len() { i + 1 } else { i - 1 };
                chars.swap(i, j);
            }
            _ => chars[i] = other(),
        }
        chars.into_iter().collect()
    }

    /// An OCR confusion, where the text has a character it can confuse.
    fn ocr(rng: &mut Rng, s: &str, script: Script) -> String {
        match script {
            Script::Latin => {
                let found: Vec<_> = LATIN_LOOKALIKES.iter().filter(|(a, b)| s.contains(a) || s.contains(b)).collect();
                match found.get(rng.below(found.len().max(1) as u64) as usize) {
                    Some((a, b)) if s.contains(a) => s.replacen(a, b, 1),
                    Some((a, b)) => s.replacen(b, a, 1),
                    None => typo(rng, s, script),
                }
            }
            Script::Chinese => {
                for (a, b) in CN_LOOKALIKES {
                    if s.contains(a) {
                        return s.replacen(a, &b.to_string(), 1);
                    }
                    if s.contains(b) {
                        return s.replacen(b, &a.to_string(), 1);
                    }
                }
                typo(rng, s, script)
            }
        }
    }

    /// The date written with day and month swapped (when that is a date too), or its year off
    /// by one, or one digit mistyped.
    fn date_error(rng: &mut Rng, d: &str) -> String {
        if d.len() != 8 {
            return d.to_owned();
        }
        let (y, m, day) = (&d[..4], &d[4..6], &d[6..]);
        match rng.below(3) {
            0 if day <= "12" => format!("{y}{day}{m}"),
            1 => format!("{}{m}{day}", y.parse::<u32>().unwrap_or(1970) + 1),
            _ => {
                let i = rng.below(8) as usize;
                let mut b = d.as_bytes().to_vec();
                b[i] = b'0' + ((b[i] - b'0' + 1 + rng.below(8) as u8) % 10);
                String::from_utf8(b).unwrap_or_else(|_| d.to_owned())
            }
        }
    }

    /// A copy of `p` entered again with 1–3 errors.
    fn corrupt(rng: &mut Rng, p: &Person, script: Script) -> Person {
        let mut d = p.clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(14) {
                0 | 1 => d.given_name = typo(rng, &d.given_name, script),
                2 | 3 => d.surname = typo(rng, &d.surname, script),
                4 => d.given_name = ocr(rng, &d.given_name, script),
                5 => d.surname = ocr(rng, &d.surname, script),
                6 => match script {
                    Script::Latin => {
                        if let Some((_, nick)) = LATIN_GIVEN.iter().find(|(full, _)| *full == d.given_name) {
                            d.given_name = (*nick).to_owned();
                        }
                    }
                    Script::Chinese => d.given_name = d.given_name.chars().take(1).collect(),
                },
                7 => std::mem::swap(&mut d.given_name, &mut d.surname),
                8 => d.date_of_birth = date_error(rng, &d.date_of_birth),
                9 => d.address_1 = typo(rng, &d.address_1, script),
                10 => d.postcode = typo(rng, &d.postcode, Script::Latin),
                11 => d.street_number = (1 + rng.below(300)).to_string(),
                12 => d.id_number = typo(rng, &d.id_number, Script::Latin),
                _ => {
                    let field = match rng.below(6) {
                        0 => &mut d.given_name,
                        1 => &mut d.address_1,
                        2 => &mut d.locality,
                        3 => &mut d.date_of_birth,
                        4 => &mut d.id_number,
                        _ => &mut d.postcode,
                    };
                    field.clear();
                }
            }
        }
        d
    }

    /// `people` people, each once, about two in five again with 1–3 copies carrying errors
    /// (FEBRL's "dataset A" shape).
    ///
    /// ```
    /// use guanxi_core::testing::person_data::{Script, duplicated};
    /// let set = duplicated(Script::Chinese, 100, 7);
    /// assert!(set.records.len() > 100 && set.records.len() == set.labels.len());
    /// assert_eq!(set.records[0].id_number.len(), 18);
    /// ```
    pub fn duplicated(script: Script, people: u64, seed: u64) -> Labelled {
        let mut rng = Rng::new(seed);
        let mut out = Labelled::default();
        for label in 0..people {
            let p = person(script, &mut rng);
            let copies = match rng.below(10) {
                0..=5 => 0,
                6 | 7 => 1,
                8 => 2,
                _ => 3,
            };
            for _ in 0..copies {
                out.records.push(corrupt(&mut rng, &p, script));
                out.labels.push(label);
            }
            out.records.push(p);
            out.labels.push(label);
        }
        out
    }

    /// Two files to link: the first holds `people` people once each; the second a copy with
    /// errors of three in five of them plus as many people the first does not hold, in
    /// another order. Matches are one-to-one; labels are shared across the files.
    ///
    /// ```
    /// use guanxi_core::testing::person_data::{Script, linked};
    /// let (a, b) = linked(Script::Latin, 100, 7);
    /// assert_eq!(a.records.len(), 100);
    /// let shared = b.labels.iter().filter(|l| a.labels.contains(l)).count();
    /// assert!(shared > 40 && shared < 80);
    /// ```
    pub fn linked(script: Script, people: u64, seed: u64) -> (Labelled, Labelled) {
        let mut rng = Rng::new(seed);
        let (mut a, mut b) = (Labelled::default(), Labelled::default());
        let mut extra = people;
        for label in 0..people {
            let p = person(script, &mut rng);
            if rng.below(5) < 3 {
                b.records.push(corrupt(&mut rng, &p, script));
                b.labels.push(label);
                b.records.push(person(script, &mut rng));
                b.labels.push(extra);
                extra += 1;
            }
            a.records.push(p);
            a.labels.push(label);
        }
        // Another order than the first file's, deterministically.
        let mut order: Vec<usize> = (0..b.records.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let b = Labelled {
            records: order.iter().map(|&i| b.records[i].clone()).collect(),
            labels: order.iter().map(|&i| b.labels[i]).collect(),
        };
        (a, b)
    }

    /// Name as one string, the way the customer center stores a person's name.
    pub fn full_name(p: &Person, script: Script) -> String {
        match script {
            Script::Latin => format!("{} {}", p.given_name, p.surname).trim().to_owned(),
            Script::Chinese => format!("{}{}", p.surname, p.given_name),
        }
    }

    /// The address as one line.
    pub fn full_address(p: &Person) -> String {
        [&p.street_number, &p.address_1, &p.address_2, &p.locality, &p.postcode, &p.state]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The records as match profiles, ids counting from `first_id`: the name (given name and
    /// surname kept apart), the full address, the identity number (a resident identity number
    /// for Chinese records, another scheme for Latin ones) and the date of birth in the custom
    /// date field `date_of_birth` (a value that is no date is left out, as a CRM's validation
    /// would refuse it).
    ///
    /// ```
    /// use guanxi_core::testing::person_data::{Script, duplicated, profiles};
    /// let set = duplicated(Script::Chinese, 5, 1);
    /// let p = &profiles(&set, Script::Chinese, 1)[0];
    /// assert!(!p.surname.is_empty() && p.custom.contains_key("date_of_birth"));
    /// ```
    pub fn profiles(set: &Labelled, script: Script, first_id: u128) -> Vec<MatchProfile> {
        let scheme = match script {
            Script::Latin => IdScheme::Other,
            Script::Chinese => IdScheme::CnResident,
        };
        set.records
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = first_id + i as u128;
                let mut profile = MatchProfile::new(
                    CustomerId(Uuid::from_u128(n)),
                    &format!("P{n:08}"),
                    &full_name(p, script),
                    CustomerKind::Individual,
                )
                .person_name(&p.given_name, &p.surname)
                .address(&full_address(p))
                .identifier(scheme, &p.id_number);
                if let Ok(day) = chrono::NaiveDate::parse_from_str(&p.date_of_birth, "%Y%m%d") {
                    profile = profile.custom("date_of_birth", &CustomValue::Date(day));
                }
                profile
            })
            .collect()
    }

    /// The pairs of records with one label, as positions (within one set of records, or
    /// across its two sides).
    pub fn true_pairs(labels: &[u64], pairs: Pairs) -> Vec<(u32, u32)> {
        let mut by_label: HashMap<u64, Vec<u32>> = HashMap::new();
        labels.iter().enumerate().for_each(|(i, l)| by_label.entry(*l).or_default().push(i as u32));
        let mut out = Vec::new();
        for members in by_label.values() {
            for (x, &i) in members.iter().enumerate() {
                out.extend(members[x + 1..].iter().map(|&j| (i, j)).filter(|&(i, j)| pairs.wants(i, j)));
            }
        }
        out
    }

    /// The share of true pairs (two records with one label) the blocking even compares: what
    /// no rule can find is above this ceiling.
    ///
    /// ```
    /// use guanxi_core::dedup::{Blocking, Pairs};
    /// use guanxi_core::testing::person_data::{Script, blocking_ceiling, duplicated, profiles};
    /// let set = duplicated(Script::Latin, 200, 3);
    /// let ceiling = blocking_ceiling(&profiles(&set, Script::Latin, 1), &set.labels, &Blocking::default(), Pairs::Within);
    /// assert!(ceiling > 0.0 && ceiling <= 1.0);
    /// ```
    pub fn blocking_ceiling(profiles: &[MatchProfile], labels: &[u64], blocking: &Blocking, pairs: Pairs) -> f64 {
        recall_ceiling(profiles, blocking, pairs, &true_pairs(labels, pairs)).share()
    }

    /// The records as CSV with a header (`rec_id,label,given_name,…`), quoted where needed.
    ///
    /// ```
    /// use guanxi_core::testing::person_data::{Script, csv, duplicated};
    /// let set = duplicated(Script::Chinese, 3, 1);
    /// let text = csv(&set, "r");
    /// assert!(text.starts_with("rec_id,label,given_name,surname,"));
    /// assert_eq!(text.lines().count(), set.records.len() + 1);
    /// ```
    pub fn csv(set: &Labelled, prefix: &str) -> String {
        let mut out = String::from(
            "rec_id,label,given_name,surname,street_number,address_1,address_2,locality,postcode,state,date_of_birth,id_number\n",
        );
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
        };
        for (i, (p, l)) in set.records.iter().zip(&set.labels).enumerate() {
            let fields = [
                &p.given_name,
                &p.surname,
                &p.street_number,
                &p.address_1,
                &p.address_2,
                &p.locality,
                &p.postcode,
                &p.state,
                &p.date_of_birth,
                &p.id_number,
            ];
            let _ = write!(out, "{prefix}{i},{l}");
            for f in fields {
                let _ = write!(out, ",{}", quote(f));
            }
            out.push('\n');
        }
        out
    }
}
