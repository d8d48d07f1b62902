//! Which accounts and regions a function covers (`ACCOUNTS`, `REGIONS`), and
//! the credentials of each account: the function's own, or the spoke role
//! `SPOKE_ROLE_NAME` assumed once per invocation. The scheduler and the
//! reporter share all of it.

use std::collections::HashMap;

use aws_credential_types::provider::SharedCredentialsProvider;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::input::EnvError;

/// `ACCOUNTS`: whose instances the function handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountsSetting {
    /// Unset: the function's own account only.
    Own,
    /// A comma list of 12-digit account ids.
    List(Vec<String>),
    /// `organization`: every ACTIVE account of the AWS Organization.
    Organization,
}

/// `SPOKE_ROLE_NAME` when unset.
pub const DEFAULT_SPOKE_ROLE: &str = "fleetops-spoke";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSettings {
    pub accounts: AccountsSetting,
    /// `SPOKE_ROLE_NAME`, default `fleetops-spoke`.
    pub spoke_role_name: String,
}

impl AccountSettings {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let non_empty = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let accounts = match non_empty("ACCOUNTS") {
            None => AccountsSetting::Own,
            Some(v) if v.eq_ignore_ascii_case("organization") => AccountsSetting::Organization,
            Some(list) => {
                let ids: Vec<String> = list
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if let Some(bad) = ids.iter().find(|a| !is_account_id(a)) {
                    return Err(EnvError {
                        name: "ACCOUNTS",
                        problem: format!(
                            "\"{bad}\" is not a 12-digit account id; expected a comma list of them, or organization"
                        ),
                    });
                }
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                AccountsSetting::List(unique)
            }
        };
        let spoke_role_name =
            non_empty("SPOKE_ROLE_NAME").unwrap_or_else(|| DEFAULT_SPOKE_ROLE.to_string());
        if !is_role_name(&spoke_role_name) {
            return Err(EnvError {
                name: "SPOKE_ROLE_NAME",
                problem: format!(
                    "\"{spoke_role_name}\" is not an IAM role name (1-64 of a-z A-Z 0-9 + = , . @ _ -)"
                ),
            });
        }
        Ok(Self {
            accounts,
            spoke_role_name,
        })
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_role_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// One unit of work: an account and a region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Unit {
    pub account: String,
    pub region: String,
}

/// Every account-region, accounts first.
pub fn units(accounts: &[String], regions: &[String]) -> Vec<Unit> {
    accounts
        .iter()
        .flat_map(|account| {
            regions.iter().map(move |region| Unit {
                account: account.clone(),
                region: region.clone(),
            })
        })
        .collect()
}

/// An account-region that could not be handled, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unhandled {
    pub account: String,
    pub region: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("reading the function's own account (sts:GetCallerIdentity) failed: {0}")]
    Identity(String),
    #[error("listing the organization's accounts (organizations:ListAccounts) failed: {0}")]
    Organization(String),
    #[error("role {role_arn} cannot be assumed: {text}")]
    AssumeRole { role_arn: String, text: String },
}

/// The accounts `setting` names, the own account resolved.
pub async fn resolve_accounts(
    setting: &AccountsSetting,
    own_account: &str,
    organizations: &aws_sdk_organizations::Client,
) -> Result<Vec<String>, AccountError> {
    match setting {
        AccountsSetting::Own => Ok(vec![own_account.to_string()]),
        AccountsSetting::List(ids) => Ok(ids.clone()),
        AccountsSetting::Organization => {
            use aws_sdk_organizations::types::AccountStatus;
            let mut pages = organizations.list_accounts().into_paginator().send();
            let mut ids = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| AccountError::Organization(crate::error_text(&e)))?;
                ids.extend(
                    page.accounts()
                        .iter()
                        // `Status` is deprecated in favour of `State`; read both.
                        .filter(|a| {
                            a.status() == Some(&AccountStatus::Active)
                                || a.state().is_some_and(|s| s.as_str() == "ACTIVE")
                        })
                        .filter_map(|a| a.id().map(str::to_string)),
                );
            }
            ids.sort();
            ids.dedup();
            Ok(ids)
        }
    }
}

/// The SDK configuration of every account, made once per invocation: the
/// function's own for its account, the spoke role's for the others.
pub struct AccountConfigs {
    base: aws_config::SdkConfig,
    own_account: String,
    partition: String,
    role_name: String,
    session_name: String,
    made: Mutex<HashMap<String, Result<aws_config::SdkConfig, String>>>,
}

/// The function's own account and partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub partition: String,
}

/// Reads the own account and partition with `sts:GetCallerIdentity` (which
/// needs no permission).
pub async fn read_identity(base: &aws_config::SdkConfig) -> Result<Identity, AccountError> {
    let identity = aws_sdk_sts::Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AccountError::Identity(crate::error_text(&e)))?;
    let account = identity
        .account()
        .ok_or_else(|| AccountError::Identity("no Account in the answer".into()))?
        .to_string();
    let partition = identity
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
        .to_string();
    Ok(Identity { account, partition })
}

/// The own identity, read on the first invocation and kept for the life of
/// the process (the function's credentials cannot change account): a warm
/// invocation makes no `GetCallerIdentity` call.
#[derive(Debug, Default)]
pub struct IdentityCache(tokio::sync::OnceCell<Identity>);

impl IdentityCache {
    pub async fn get(&self, base: &aws_config::SdkConfig) -> Result<&Identity, AccountError> {
        self.0.get_or_try_init(|| read_identity(base)).await
    }
}

impl AccountConfigs {
    /// The configurations of one invocation: `identity` is the function's own
    /// account; `session_name` says which function.
    pub fn new(
        base: aws_config::SdkConfig,
        identity: &Identity,
        role_name: &str,
        session_name: &str,
    ) -> Self {
        Self {
            base,
            own_account: identity.account.clone(),
            partition: identity.partition.clone(),
            role_name: role_name.to_string(),
            session_name: session_name.to_string(),
            made: Mutex::new(HashMap::new()),
        }
    }

    pub fn own_account(&self) -> &str {
        &self.own_account
    }

    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        )
    }

    /// The configuration for `account` (the role assumed on first use, its
    /// failure remembered for the rest of the invocation).
    pub async fn config(&self, account: &str) -> Result<aws_config::SdkConfig, AccountError> {
        if account == self.own_account {
            return Ok(self.base.clone());
        }
        let mut made = self.made.lock().await;
        let role_arn = self.role_arn(account);
        if let Some(known) = made.get(account) {
            return known.clone().map_err(|text| AccountError::AssumeRole {
                role_arn: role_arn.clone(),
                text,
            });
        }
        let result = self.assume(&role_arn).await;
        made.insert(account.to_string(), result.clone());
        result.map_err(|text| AccountError::AssumeRole { role_arn, text })
    }

    async fn assume(&self, role_arn: &str) -> Result<aws_config::SdkConfig, String> {
        let sts = aws_sdk_sts::Client::new(&self.base);
        let output = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&self.session_name)
            .send()
            .await
            .map_err(|e| crate::error_text(&e))?;
        let creds = output
            .credentials()
            .ok_or_else(|| "no credentials in the answer".to_string())?;
        let expiry = std::time::SystemTime::try_from(*creds.expiration()).ok();
        let credentials = aws_credential_types::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            expiry,
            "fleetops-spoke-role",
        );
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::input::test_env as env;

    #[test]
    fn accounts_are_the_own_a_list_or_the_organization() {
        let own = AccountSettings::from_env(env(&[])).expect("unset");
        assert_eq!(own.accounts, AccountsSetting::Own);
        assert_eq!(own.spoke_role_name, "fleetops-spoke");
        let list = AccountSettings::from_env(env(&[(
            "ACCOUNTS",
            " 222222222222,111111111111 ,222222222222",
        )]))
        .expect("list");
        assert_eq!(
            list.accounts,
            AccountsSetting::List(vec!["111111111111".into(), "222222222222".into()])
        );
        let org = AccountSettings::from_env(env(&[("ACCOUNTS", "Organization")])).expect("org");
        assert_eq!(org.accounts, AccountsSetting::Organization);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = AccountSettings::from_env(env(&[("ACCOUNTS", "1234,111111111111")])).unwrap_err();
        assert_eq!(e.name, "ACCOUNTS");
        assert!(e.problem.contains("\"1234\""), "{e}");
        let e = AccountSettings::from_env(env(&[("SPOKE_ROLE_NAME", "no/slash")])).unwrap_err();
        assert_eq!(e.name, "SPOKE_ROLE_NAME");
    }

    #[test]
    fn units_are_every_account_region() {
        let u = units(
            &["1".into(), "2".into()],
            &["eu-west-1".into(), "us-east-1".into()],
        );
        assert_eq!(u.len(), 4);
        assert_eq!(
            u[1],
            Unit {
                account: "1".into(),
                region: "us-east-1".into()
            }
        );
    }
}
