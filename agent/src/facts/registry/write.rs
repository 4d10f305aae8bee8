//! Registry writes, for the opt-in repair (`crate::fix`): the [`RegistryWrite`] trait, an
//! in-memory implementation ([`MemoryRegistry`]: a [`MapRegistry`] shared behind a lock, so
//! that what a check reads and what the fix writes are the same values) and, on Windows, the
//! live registry (`NativeRegistry`), written through the 64-bit view as it is read
//! (`Wow6432Node` paths are written literally, which is where 32-bit programs look).
//!
//! Only REG_DWORD values are written, and only the fix writes: the rest of the agent reads.

use std::sync::{Arc, RwLock};

use super::{KeyPath, MapRegistry, Registry, value_name, value_path};
use crate::facts::Fact;

/// Writes registry values; every implementation also reads ([`Registry`]), so a write can be
/// read back.
pub trait RegistryWrite: Registry {
    /// Sets the REG_DWORD `name` under key `path` to `value`, creating the key (and the keys
    /// above it) when missing; a value of another type is replaced.
    fn set_dword(&self, path: &str, name: &str, value: u32) -> Result<(), RegistryWriteError>;

    /// Deletes the value `name` under key `path`; a value or key that does not exist is not an
    /// error (the value is absent afterwards either way). The key itself stays.
    fn delete_value(&self, path: &str, name: &str) -> Result<(), RegistryWriteError>;
}

/// Why a registry write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} {value}: {reason}")]
pub struct RegistryWriteError {
    /// `set` or `delete`.
    pub action: &'static str,
    /// The value's full path, `HKLM\...\Key\Name`.
    pub value: String,
    pub reason: String,
}

impl RegistryWriteError {
    fn new(action: &'static str, path: &str, name: &str, reason: impl Into<String>) -> Self {
        RegistryWriteError {
            action,
            value: value_path(path, name),
            reason: reason.into(),
        }
    }
}

impl<R: RegistryWrite + ?Sized> RegistryWrite for Arc<R> {
    fn set_dword(&self, path: &str, name: &str, value: u32) -> Result<(), RegistryWriteError> {
        (**self).set_dword(path, name, value)
    }

    fn delete_value(&self, path: &str, name: &str) -> Result<(), RegistryWriteError> {
        (**self).delete_value(path, name)
    }
}

impl MapRegistry {
    /// Removes value `name` of key `path`, if it is there.
    pub fn remove(&mut self, path: &str, name: &str) {
        if let Some(key) = KeyPath::parse(path) {
            self.values.remove(&(key.lookup, value_name(name)));
        }
    }
}

/// DWORD values in memory that can be read and written from several places at once: a clone
/// shares the values (simulated devices, tests of the fix).
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    values: Arc<RwLock<MapRegistry>>,
}

impl MemoryRegistry {
    /// A registry holding `values`.
    pub fn new(values: MapRegistry) -> Self {
        MemoryRegistry {
            values: Arc::new(RwLock::new(values)),
        }
    }

    /// The values now.
    pub fn snapshot(&self) -> MapRegistry {
        // A poisoned lock still holds the last values written, which is what the registry holds.
        match self.values.read() {
            Ok(values) => values.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write(&self, change: impl FnOnce(&mut MapRegistry)) {
        match self.values.write() {
            Ok(mut values) => change(&mut values),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }
}

impl Registry for MemoryRegistry {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        self.snapshot().dword(path, name)
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        self.snapshot().string(path, name)
    }
}

impl RegistryWrite for MemoryRegistry {
    fn set_dword(&self, path: &str, name: &str, value: u32) -> Result<(), RegistryWriteError> {
        if !MapRegistry::accepts(path) {
            return Err(RegistryWriteError::new(
                "set",
                path,
                name,
                "the key does not start with a registry hive",
            ));
        }
        self.write(|values| values.insert(path, name, value));
        Ok(())
    }

    fn delete_value(&self, path: &str, name: &str) -> Result<(), RegistryWriteError> {
        if !MapRegistry::accepts(path) {
            return Err(RegistryWriteError::new(
                "delete",
                path,
                name,
                "the key does not start with a registry hive",
            ));
        }
        self.write(|values| values.remove(path, name));
        Ok(())
    }
}

#[cfg(windows)]
impl RegistryWrite for super::NativeRegistry {
    fn set_dword(&self, path: &str, name: &str, value: u32) -> Result<(), RegistryWriteError> {
        use winreg::RegKey;
        use winreg::enums::{KEY_SET_VALUE, KEY_WOW64_64KEY};

        let error = |reason: String| RegistryWriteError::new("set", path, name, reason);
        let key = KeyPath::parse(path)
            .ok_or_else(|| error("the key does not start with a registry hive".into()))?;
        let (hive, subkey) = super::native_hive(&key);
        let (opened, _) = RegKey::predef(hive)
            .create_subkey_with_flags(subkey, KEY_SET_VALUE | KEY_WOW64_64KEY)
            .map_err(|e| error(format!("cannot open or create {}: {e}", key.display)))?;
        opened
            .set_value(name, &value)
            .map_err(|e| error(e.to_string()))
    }

    fn delete_value(&self, path: &str, name: &str) -> Result<(), RegistryWriteError> {
        use std::io::ErrorKind;

        use winreg::RegKey;
        use winreg::enums::{KEY_SET_VALUE, KEY_WOW64_64KEY};

        let error = |reason: String| RegistryWriteError::new("delete", path, name, reason);
        let key = KeyPath::parse(path)
            .ok_or_else(|| error("the key does not start with a registry hive".into()))?;
        let (hive, subkey) = super::native_hive(&key);
        let opened = match RegKey::predef(hive)
            .open_subkey_with_flags(subkey, KEY_SET_VALUE | KEY_WOW64_64KEY)
        {
            Ok(opened) => opened,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(error(format!("cannot open {}: {e}", key.display))),
        };
        match opened.delete_value(name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(error(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = r"HKLM\SOFTWARE\Example";

    #[test]
    fn a_memory_registry_is_shared_by_its_clones() {
        let registry = MemoryRegistry::new(MapRegistry::new().with(KEY, "Kept", 7));
        let other = registry.clone();
        registry.set_dword(KEY, "Value", 0x800).expect("set");
        assert_eq!(other.dword(KEY, "value").known(), Some(&0x800));
        assert_eq!(
            other.dword(&KEY.to_lowercase(), "VALUE").known(),
            Some(&0x800)
        );
        other.delete_value(KEY, "Value").expect("delete");
        assert!(matches!(registry.dword(KEY, "Value"), Fact::Absent { .. }));
        other
            .delete_value(KEY, "Value")
            .expect("deleting an absent value is fine");
        assert_eq!(registry.dword(KEY, "Kept").known(), Some(&7));
    }

    #[test]
    fn a_key_without_a_hive_is_refused_by_name() {
        let registry = MemoryRegistry::default();
        let e = registry
            .set_dword(r"SOFTWARE\X", "V", 1)
            .expect_err("no hive");
        assert_eq!(
            e.to_string(),
            r"cannot set SOFTWARE\X\V: the key does not start with a registry hive"
        );
        assert!(registry.delete_value("nowhere", "V").is_err());
    }
}
