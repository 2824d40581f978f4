//! A stage's environment during lowering: ordered like llb's, with constant-time lookups and
//! updates, so lowering stays linear in the number of ENV and ARG instructions.

use std::collections::HashMap;

use crate::shell::Vars;

/// Key/value pairs in llb's order: setting a key (`AddOrReplace`) moves it to the end.
///
/// Removed entries leave a hole that is squeezed out once holes outnumber live entries, so
/// [`Env::set`] is amortized O(1) and iteration O(live entries).
#[derive(Clone, Debug, Default)]
pub(crate) struct Env {
    slots: Vec<Option<(String, String)>>,
    /// Where each key's slot is.
    index: HashMap<String, usize>,
}

impl Env {
    /// The environment of `KEY=value` strings (an image config's `Env`), each set in turn as
    /// BuildKit does (a key given twice keeps its last value, at its last position).
    pub fn from_config(env: &[String]) -> Self {
        let mut out = Env::default();
        for e in env {
            match e.split_once('=') {
                Some((k, v)) => out.set(k, v),
                None => out.set(e, ""),
            }
        }
        out
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let slot = self.slots.get(*self.index.get(key)?)?;
        slot.as_ref().map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, moving it to the end.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(i) = self.index.get(key).copied()
            && let Some(slot) = self.slots.get_mut(i)
        {
            *slot = None;
        }
        self.index.insert(key.to_string(), self.slots.len());
        self.slots.push(Some((key.to_string(), value.to_string())));
        if self.slots.len() > 2 * self.index.len() + 16 {
            self.compact();
        }
    }

    /// Squeezes out the holes.
    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (i, (k, _)) in self.slots.iter().flatten().enumerate() {
            if let Some(slot) = self.index.get_mut(k.as_str()) {
                *slot = i;
            }
        }
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.slots
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }
}

impl Vars for Env {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self, name)
    }
}

/// An image config's `Env` list (`KEY=value` strings) with an index of its keys: BuildKit's
/// `addEnv` (replace in place, else append) in constant time.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConfigEnvIndex {
    /// Position of the first entry of each key.
    index: HashMap<String, usize>,
}

impl ConfigEnvIndex {
    /// The index of `env` as it is.
    pub fn of(env: &[String]) -> Self {
        let mut index = HashMap::with_capacity(env.len());
        for (i, e) in env.iter().enumerate() {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            index.entry(key.to_string()).or_insert(i);
        }
        ConfigEnvIndex { index }
    }

    /// Sets `key` in `env` (indexed by `self`): replaced in place, or appended.
    pub fn set(&mut self, env: &mut Vec<String>, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self.index.get(key).and_then(|&i| env.get_mut(i)) {
            Some(slot) => *slot = entry,
            None => {
                self.index.insert(key.to_string(), env.len());
                env.push(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_moves_the_key_to_the_end_and_keeps_order() {
        let mut e = Env::from_config(&["A=1".into(), "B=2".into(), "A=3".into(), "C".into()]);
        assert_eq!(
            e.iter().collect::<Vec<_>>(),
            vec![("B", "2"), ("A", "3"), ("C", "")]
        );
        e.set("B", "4");
        assert_eq!(e.keys().collect::<Vec<_>>(), vec!["A", "C", "B"]);
        assert_eq!(e.get("B"), Some("4"));
        assert_eq!(e.get("Z"), None);
        for i in 0..1000 {
            e.set("A", &i.to_string());
        }
        assert_eq!(e.keys().collect::<Vec<_>>(), vec!["C", "B", "A"]);
        assert_eq!(e.get("A"), Some("999"));
        assert!(e.slots.len() < 2 * 3 + 17, "holes are squeezed out");
    }

    #[test]
    fn config_env_replaces_in_place() {
        let mut env: Vec<String> = vec!["PATH=/bin".into(), "A=1".into()];
        let mut idx = ConfigEnvIndex::of(&env);
        idx.set(&mut env, "PATH", "/usr/bin");
        idx.set(&mut env, "B", "2");
        idx.set(&mut env, "B", "3");
        assert_eq!(env, vec!["PATH=/usr/bin", "A=1", "B=3"]);
    }
}
