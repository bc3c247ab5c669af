//! `otelite serve`'s command line, and the one place its sources are ranked:
//! flag, else `OTELITE_*` variable, else the config file, else the default.
//! Clap ranks the first two and the last; the file goes in between.

use super::{Config, ConfigError, Settings};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use std::path::PathBuf;

/// The serve subcommand's arguments: the file to read, and the settings
/// given as flags or variables. Not `Debug`: the matches keep the raw
/// values, tokens among them.
pub struct ServeArgs {
    config: Option<PathBuf>,
    /// Clap's matches less the values it took from the defaults, which must
    /// rank below the file.
    given: ArgMatches,
}

/// Not a setting: it names where the others come from, so it has no key.
#[derive(Args)]
struct ConfigFile {
    /// TOML file with the settings below as keys (db = "…", otlp_listen = "…")
    #[arg(long, env = "OTELITE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    /// Reads the file, if one is named, and ranks the sources.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        self.over(file)?.into_config()
    }

    /// `lower` (the file over the defaults) with every setting that was
    /// given as a flag or a variable replaced.
    pub(super) fn over(&self, mut lower: Settings) -> Result<Settings, ConfigError> {
        lower.update_from_arg_matches(&self.given)?;
        Ok(lower)
    }
}

impl Args for ServeArgs {
    fn augment_args(command: Command) -> Command {
        Settings::augment_args(ConfigFile::augment_args(command)).mut_args(read_variables)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let config = ConfigFile::from_arg_matches(matches)?.config;
        let mut given = matches.clone();
        for id in matches.ids() {
            if matches.value_source(id.as_str()) == Some(ValueSource::DefaultValue) {
                given
                    .try_clear_id(id.as_str())
                    .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))?;
            }
        }
        Ok(Self { config, given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// How every setting reads its variable. An empty one counts as unset, as
/// `OTELITE_DB= otelite serve` means (clap would hand the parser ""). Help
/// names the variable but not its value, which may be a token.
fn read_variables(arg: Arg) -> Arg {
    let empty = arg
        .get_env()
        .and_then(std::env::var_os)
        .is_some_and(|value| value.is_empty());
    let arg = arg.hide_env_values(true);
    if empty { arg.env(None) } else { arg }
}
