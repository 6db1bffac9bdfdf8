//! Secrets from SSM Parameter Store: read once per cold start, never logged.

use std::collections::HashMap;

/// Settings that hold secrets. Deployed, each comes from the SSM SecureString parameter named
/// by `{SETTING}_PARAMETER` (decrypted with the stack's KMS key), never from a plain
/// environment value; locally the setting itself may be set.
pub const SECRET_SETTINGS: [&str; 4] = [
    "STEPSYNC_TOKEN_KEY",
    "STEPSYNC_GOOGLE_CLIENT_SECRET",
    "STEPSYNC_GOOGLE_WEBHOOK_SECRET",
    "STEPSYNC_MISFIT_CLIENT_SECRET",
];

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading secrets from SSM failed: {0}")]
    Ssm(String),
    #[error("the SSM parameter for {0} does not exist")]
    Missing(String),
}

/// Replaces every `{SETTING}_PARAMETER` in `vars`, for the `settings` this function loads
/// (a subset of `SECRET_SETTINGS`), by `{SETTING}` = the parameter's value, fetched in one
/// `GetParameters` call with decryption. No SSM client is built when nothing is wanted; other
/// secrets are never fetched. Values are never logged.
pub async fn resolve_secret_parameters(
    sdk: &aws_config::SdkConfig,
    settings: &[&str],
    vars: &mut HashMap<String, String>,
) -> Result<(), SecretsError> {
    let wanted: Vec<(&str, String)> = SECRET_SETTINGS
        .iter()
        .filter(|setting| settings.contains(setting))
        .filter_map(|setting| {
            let name = vars.get(&format!("{setting}_PARAMETER")).filter(|n| !n.is_empty())?;
            Some((*setting, name.clone()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
    names.sort();
    names.dedup();
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| SecretsError::Ssm(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
    let found: HashMap<String, String> =
        out.parameters().iter().filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned()))).collect();
    for (setting, name) in wanted {
        let value = found.get(&name).ok_or_else(|| SecretsError::Missing(setting.to_owned()))?;
        vars.insert(setting.to_owned(), value.clone());
    }
    Ok(())
}
