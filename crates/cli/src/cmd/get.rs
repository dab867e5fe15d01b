//! `podnet get KIND [NAME...] [-n NS | -A] [-o wide|yaml|json|name] [-l SELECTOR]`

use std::process::ExitCode;

use anyhow::bail;
use podnet_client::printer;
use podnet_model::{Kind, Object, Selector};

use crate::output;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(clap::Args)]
pub struct Args {
    /// Kind: pods (po), services (svc), nodes (no), namespaces (ns), endpointslices (ep),
    /// networkpolicies (netpol), ingresses (ing), secrets, configmaps (cm), clusterconfigs (cc).
    kind: String,
    /// Names to show (default: all).
    names: Vec<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Output format.
    #[arg(short, long, value_enum)]
    output: Option<Format>,
    /// Label selector, e.g. app=web,tier!=db,env in (a,b),!legacy.
    #[arg(short = 'l', long)]
    selector: Option<String>,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let kind: Kind = args.kind.parse()?;
    let selector = match &args.selector {
        Some(s) => Selector::parse(s)?,
        None => Selector::everything(),
    };
    if args.all_namespaces && !args.names.is_empty() {
        bail!("a name cannot be combined with --all-namespaces: expected -n NAMESPACE, found -A");
    }
    let api = super::api(store).await?;
    let ns = (kind.namespaced() && !args.all_namespaces).then_some(args.namespace.as_str());
    let mut objects = Vec::new();
    let mut missing = false;
    if args.names.is_empty() {
        let (all, _) = api.list(kind, ns).await?;
        objects.extend(
            all.into_iter()
                .filter(|o| selector.matches_opt(o.meta().labels.as_ref())),
        );
    } else {
        for name in &args.names {
            match api.get(kind, ns, name).await? {
                Some(o) => objects.push(o),
                None => {
                    missing = true;
                    output::error(&format!(
                        "(NotFound) {} {name:?} not found{}",
                        kind.info().plural,
                        ns.map(|n| format!(" in namespace {n:?}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    print(kind, &objects, &args, ns, args.names.len() == 1);
    Ok(if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print(kind: Kind, objects: &[Object], args: &Args, ns: Option<&str>, single: bool) {
    let plural = kind.info().plural;
    match args.output {
        Some(Format::Yaml) | Some(Format::Json) => {
            let value = if single && objects.len() == 1 {
                objects[0].to_value()
            } else {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": objects.iter().map(Object::to_value).collect::<Vec<_>>(),
                })
            };
            if args.output == Some(Format::Json) {
                output::line(&serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                output::out(&serde_yaml_ng::to_string(&value).unwrap_or_default());
            }
        }
        Some(Format::Name) => {
            for o in objects {
                output::line(&format!("{}/{}", kind.name().to_lowercase(), o.name()));
            }
        }
        _ if objects.is_empty() => {
            if args.names.is_empty() {
                match ns {
                    Some(n) => output::note(&format!("No {plural} found in {n} namespace.")),
                    None => output::note(&format!("No {plural} found.")),
                }
            }
        }
        f => output::out(&printer::table(
            kind,
            objects,
            f == Some(Format::Wide),
            args.all_namespaces,
            jiff::Timestamp::now(),
        )),
    }
}
