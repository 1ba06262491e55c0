//! A warning for config files that hold secrets and that other users can read.

/// Permission bits that let the file's group or other users read it.
const GROUP_OR_OTHER_READ: u32 = 0o044;

/// Warns when `file`, which holds a literal secret at `secret_key`, is readable by its
/// group or by others (`mode`, where the platform has one): anyone who can read the
/// file can forge deliveries or read the channel.
pub fn warn_if_readable_by_others(file: &str, mode: Option<u32>, secret_key: &str) {
    let Some(mode) = mode.filter(|m| m & GROUP_OR_OTHER_READ != 0) else {
        return;
    };
    tracing::warn!(
        "{file} holds secrets ({secret_key}) and is readable by group/others (mode {mode:04o}): \
         run `chmod 600 {file}`, or read the secrets from the environment with \"env:NAME\""
    );
}
