//! The compact form of the proxy's set elements: a key is a set index plus up to
//! four 32-bit words, data a range end, two words or a verdict id. The engine keeps
//! elements in this form and turns them into nft [`Element`]s only for a batch.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use podnet_linux::nft::{DataType, ElemData, Element, Set, SetData, TableState, Value, Verdict};

/// Most values in a key of the proxy's sets (`daddr . l4proto . dport . slot`).
pub(super) const KEY_WORDS: usize = 4;
/// Most values of map data (`addr . port`).
pub(super) const DATA_WORDS: usize = 2;

/// A set element's key: the set (index into [`Codec::sets`], which are in name order)
/// and the key's values, one 32-bit word each, typed by the set's key types. Ordered
/// like `(set name, Vec<Value>)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) set: u8,
    pub(super) v: [u32; KEY_WORDS],
}

/// What an element holds besides its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Data {
    /// A set element.
    None,
    /// The inclusive end of a range (interval sets).
    End([u32; KEY_WORDS]),
    /// Map data, typed by the set's data types.
    Values([u32; DATA_WORDS]),
    /// A verdict map's verdict (index into [`Codec::verdicts`]).
    Verdict(u32),
}

/// Converts between [`Element`]s of the proxy's table and the compact form. Covers
/// the value types the ruleset uses (addresses, protocols, ports, 32-bit integers);
/// every conversion is checked to round-trip in debug builds.
#[derive(Debug)]
pub(super) struct Codec {
    pub(super) sets: Vec<SetDef>,
    /// Every verdict seen (a few: one per balancing chain and reject/drop).
    pub(super) verdicts: Vec<Verdict>,
    pub(super) verdict_ids: HashMap<Verdict, u32>,
}

#[derive(Debug)]
pub(super) struct SetDef {
    pub(super) set: Set,
    pub(super) data: Vec<DataType>,
}

pub(super) fn word(v: &Value) -> u32 {
    match v {
        Value::Ipv4(a) => u32::from(*a),
        Value::Proto(p) => u32::from(*p),
        Value::Port(p) => u32::from(*p),
        Value::U32(x) => *x,
        other => panic!("the proxy's table holds no {other:?}"),
    }
}

pub(super) fn value(t: DataType, w: u32) -> Value {
    match t {
        DataType::Ipv4Addr => Value::Ipv4(Ipv4Addr::from(w)),
        DataType::InetProto => Value::Proto(w as u8),
        DataType::InetService => Value::Port(w as u16),
        DataType::Mark => Value::U32(w),
        other => panic!("the proxy's table has no {other:?} values"),
    }
}

pub(super) fn words<const N: usize>(vals: &[Value]) -> [u32; N] {
    assert!(vals.len() <= N, "{vals:?}: more than {N} values");
    let mut out = [0; N];
    for (o, v) in out.iter_mut().zip(vals) {
        *o = word(v);
    }
    out
}

impl Codec {
    pub(super) fn new(skeleton: &TableState) -> Codec {
        Codec {
            sets: skeleton
                .sets
                .values()
                .map(|s| SetDef {
                    set: s.set.clone(),
                    data: match &s.set.data {
                        Some(SetData::Values(types)) => types.clone(),
                        _ => Vec::new(),
                    },
                })
                .collect(),
            verdicts: Vec::new(),
            verdict_ids: HashMap::new(),
        }
    }

    pub(super) fn set_index(&self, name: &str) -> u8 {
        let i = self
            .sets
            .iter()
            .position(|s| s.set.name == name)
            .unwrap_or_else(|| panic!("no set {name} in the proxy's table"));
        u8::try_from(i).expect("fewer than 256 sets")
    }

    pub(super) fn encode(&mut self, set: &str, e: &Element) -> (Key, Data) {
        let set = self.set_index(set);
        let def = &self.sets[usize::from(set)];
        assert_eq!(e.key.len(), def.set.key.len(), "{e:?} in {}", def.set.name);
        assert!(e.timeout.is_none(), "{e:?}: no timeouts in fragments");
        let key = Key {
            set,
            v: words(&e.key),
        };
        let data = match (&e.key_end, &e.data) {
            (None, None) => Data::None,
            (Some(end), None) => Data::End(words(end)),
            (None, Some(ElemData::Values(vals))) => {
                assert_eq!(vals.len(), def.data.len(), "{e:?} in {}", def.set.name);
                Data::Values(words(vals))
            }
            (None, Some(ElemData::Verdict(v))) => Data::Verdict(match self.verdict_ids.get(v) {
                Some(id) => *id,
                None => {
                    let id = u32::try_from(self.verdicts.len()).expect("verdict ids");
                    self.verdicts.push(v.clone());
                    self.verdict_ids.insert(v.clone(), id);
                    id
                }
            }),
            _ => panic!("{e:?}: a range with map data"),
        };
        debug_assert_eq!(&self.decode(key, data), e);
        (key, data)
    }

    pub(super) fn decode(&self, key: Key, data: Data) -> Element {
        let def = &self.sets[usize::from(key.set)];
        let values = |w: &[u32]| -> Vec<Value> {
            def.set
                .key
                .iter()
                .zip(w)
                .map(|(t, w)| value(*t, *w))
                .collect()
        };
        Element {
            key: values(&key.v),
            key_end: match data {
                Data::End(end) => Some(values(&end)),
                _ => None,
            },
            data: match data {
                Data::Values(w) => Some(ElemData::Values(
                    def.data
                        .iter()
                        .zip(&w)
                        .map(|(t, w)| value(*t, *w))
                        .collect(),
                )),
                Data::Verdict(id) => Some(ElemData::Verdict(self.verdicts[id as usize].clone())),
                Data::None | Data::End(_) => None,
            },
            timeout: None,
        }
    }

    pub(super) fn set_name(&self, key: Key) -> &str {
        &self.sets[usize::from(key.set)].set.name
    }
}
