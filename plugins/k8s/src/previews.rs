//! Preview workspaces: for the repositories an org lists, a pull request that
//! opens or becomes ready gets a workspace on its head branch, owned by its
//! author; it is deleted when the pull request closes or merges. Read from the
//! github plugin's `github.pull.updated` events.

use crate::policy::Policy;
use crate::requests::{self, Action, Requested};
use crate::settings::Settings;
use crate::workspace::{Desired, Preview, Reason, Spec, Workspace};
use devpulse_sdk::prelude::*;

pub const PULL_UPDATED: &str = "github.pull.updated";

/// The part of `github.pull.updated` previews need.
#[derive(Deserialize)]
struct Pull {
    repo: String,
    number: u64,
    author_user: Option<String>,
    state: String,
    draft: bool,
    #[serde(default)]
    head_ref: String,
}

fn index_key(repo: &str, number: u64) -> String {
    format!("preview/{repo}#{number}")
}

pub fn on_pull(event: &Event) -> Result<()> {
    let pull: Pull = event.json()?;
    let settings = Settings::load()?;
    if !Policy::load(&settings)?.previews(&pull.repo) {
        return Ok(());
    }
    let at = event.occurred_at;
    let existing = match storage::get::<String>(&index_key(&pull.repo, pull.number))? {
        Some(id) => Workspace::load(&id)?.filter(|workspace| workspace.desired != Desired::Deleted),
        None => None,
    };
    let wanted = pull.state == "open" && !pull.draft && !pull.head_ref.is_empty();
    match (existing, wanted, &pull.author_user) {
        (Some(mut workspace), false, _) if pull.state != "open" => {
            let request = Requested::new(
                &workspace.id,
                Action::Delete,
                Reason::Preview,
                &format!("{}#{}", pull.repo, pull.number),
                at,
            );
            requests::carry_out(&settings, &mut workspace, &request)?;
            workspace.save()
        }
        (None, true, Some(owner)) => {
            let id = format!("pr-{}", event.id.to_ascii_lowercase());
            let preview = Preview { repo: pull.repo.clone(), number: pull.number };
            let spec = Spec {
                repo: pull.repo.clone(),
                branch: pull.head_ref.clone(),
                tier: None,
                image: None,
                idle_timeout_minutes: None,
                ttl_hours: None,
            };
            let mut workspace =
                Workspace::new(&settings, &id, owner, &event.principal.org_id, spec, Reason::Preview, at)?;
            workspace.preview = Some(preview);
            storage::put(&index_key(&pull.repo, pull.number), &id)?;
            let request =
                Requested::new(&id, Action::Create, Reason::Preview, &format!("{}#{}", pull.repo, pull.number), at);
            requests::carry_out(&settings, &mut workspace, &request)?;
            workspace.save_new()
        }
        (None, true, None) => {
            log::info(&format!("no preview for {}#{}: its author is not a DevPulse user", pull.repo, pull.number));
            Ok(())
        }
        _ => Ok(()),
    }
}
