//! Published template versions, parsed once. A published version never changes, so a parsed
//! definition can be shared by every request until the process ends; the cache is bounded
//! and simply starts over when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::auth::TenantScope;
use crate::db::{self, DbConnection};
use crate::domain::ids::{TemplateId, TenantId};
use crate::domain::template::{TemplateDefinition, parse_definition};
use crate::service::error::ServiceError;

const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub struct DefinitionCache {
    parsed: Mutex<HashMap<(TenantId, TemplateId, i32), Arc<TemplateDefinition>>>,
}

impl DefinitionCache {
    /// The definition of a version, parsed. Only published versions may be asked for.
    pub fn get(
        &self,
        conn: &mut DbConnection,
        scope: &TenantScope,
        template: TemplateId,
        number: i32,
    ) -> Result<Arc<TemplateDefinition>, ServiceError> {
        let key = (scope.tenant_id(), template, number);
        if let Some(def) = self.lock().get(&key) {
            return Ok(def.clone());
        }
        let version = db::templates::find_version(conn, scope, template, number)?
            .ok_or(ServiceError::NotFound)?;
        let def = Arc::new(parse_definition(&version.definition.0).map_err(|_| {
            ServiceError::Internal(format!("stored template version {number} does not parse"))
        })?);
        let mut cache = self.lock();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(key, def.clone());
        Ok(def)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(TenantId, TemplateId, i32), Arc<TemplateDefinition>>>
    {
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}
