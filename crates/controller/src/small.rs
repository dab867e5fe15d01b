//! Vectors used as maps and sets where entries are few (a service's slices, an owner's
//! allocations, the pods with one label value): a fraction of the memory of a B-tree
//! or hash set, and as fast at these sizes.

/// A set kept in a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallSet<K>(Vec<K>);

impl<K> Default for SmallSet<K> {
    fn default() -> Self {
        SmallSet(Vec::new())
    }
}

impl<K: PartialEq> SmallSet<K> {
    /// Adds `k`; false when it was there.
    pub fn insert(&mut self, k: K) -> bool {
        if self.0.contains(&k) {
            return false;
        }
        self.0.push(k);
        true
    }

    pub fn remove<Q>(&mut self, k: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        match self.0.iter().position(|x| x.borrow() == k) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub fn contains<Q>(&self, k: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0.iter().any(|x| x.borrow() == k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.0.iter()
    }
}

impl<'a, K> IntoIterator for &'a SmallSet<K> {
    type Item = &'a K;
    type IntoIter = std::slice::Iter<'a, K>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A map kept in a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0.iter().find(|(x, _)| x.borrow() == k).map(|(_, v)| v)
    }

    /// Sets `k`; returns the value it replaced.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.0.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => Some(std::mem::replace(&mut slot.1, v)),
            None => {
                self.0.push((k, v));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let i = self.0.iter().position(|(x, _)| x.borrow() == k)?;
        Some(self.0.swap_remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_map() {
        let mut s = SmallSet::default();
        assert!(s.insert("a".to_string()));
        assert!(!s.insert("a".to_string()));
        assert!(s.contains("a"));
        assert!(s.remove("a"));
        assert!(s.is_empty());
        let mut m = SmallMap::default();
        assert_eq!(m.insert("k".to_string(), 1), None);
        assert_eq!(m.insert("k".to_string(), 2), Some(1));
        assert_eq!(m.get("k"), Some(&2));
        assert_eq!(m.remove("k"), Some(2));
        assert!(m.is_empty());
    }
}
