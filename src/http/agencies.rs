//! `GET /v1/agencies/{id}/liaison`: an agency's or hub's liaison (联络人, section 二), as
//! `agencies.yaml` names it, for those who work with it.
//!
//! Who may read it: operators; the agency itself; agencies of the same division (the
//! counterparts), above it or below it on the chain of superiors (requests go up, answers come
//! down), or in a key region with it (section 十); the hub of a region it belongs to (and every
//! hub, for the national bodies, which guide the regions). A hub's liaison: the agencies of its
//! region, and the national bodies. Anyone else is refused (403): a
//! liaison's name and number are personal data.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::{self, Principal};
use super::error::ApiError;
use crate::config::Liaison;
use crate::gateway::Gateway;
use crate::model::{AgencyId, Code, Division, Problem, Sender};
use crate::route::Router;

/// An agency's or hub's liaison and the name it goes by.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LiaisonOf<'a> {
    /// The agency (`KIND:DIVISION`) or hub (`hub:REGION`).
    pub id: String,
    pub name: &'a str,
    pub liaison: &'a Liaison,
}

/// The liaison (联络人) of an agency or hub
///
/// For those who work with it: its counterparts at the same division, the agencies above and
/// below it on the chain of superiors, agencies of a key region with it, its region's hub, and
/// the operators.
#[utoipa::path(get, path = "/v1/agencies/{id}/liaison", operation_id = "liaison", tag = "agencies",
    params(("id" = String, Path, description = "KIND:DIVISION or hub:REGION")),
    security(("bearer" = []), ("mutualTLS" = [])),
    responses(
        (status = 200, description = "The liaison", body = LiaisonOf),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "The caller does not work with this agency"),
        (status = 404, description = "Not configured, or no liaison named"),
    ))]
pub async fn liaison(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rt = gw.runtime();
    let config = &rt.config;
    let caller = auth::principal(&config.agencies, &config.operators, &req)?;
    let target: Sender = id.parse().map_err(|e: String| Problem::new(Code::NotFound, e))?;
    let (name, liaison): (&str, Option<&Liaison>) = match &target {
        Sender::Agency(a) => match config.agencies.get(a) {
            Some(agency) => (&agency.name, agency.liaison.as_ref()),
            None => return Err(not_found(format!("{target} is not a configured agency"))),
        },
        Sender::Hub(key) => match config.agencies.hub(key) {
            Some(hub) => (&hub.name, hub.liaison.as_ref()),
            None => return Err(not_found(format!("{target} is not a configured hub"))),
        },
    };
    may_read(&caller, &target, &config.router).map_err(|why| {
        Problem::new(Code::Forbidden, format!("{caller} may not read the liaison of {target}: {why}"))
    })?;
    let Some(liaison) = liaison else {
        return Err(not_found(format!("{target} has named no liaison (liaison: in agencies.yaml)")));
    };
    tracing::info!(reader = %caller, of = %target, "liaison read");
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(LiaisonOf {
        id: target.to_string(),
        name,
        liaison,
    }))
}

fn not_found(message: String) -> ApiError {
    Problem::new(Code::NotFound, message).into()
}

/// Whether `caller` works with `target` closely enough to read its liaison (see the module);
/// why not, otherwise.
pub fn may_read(caller: &Principal, target: &Sender, router: &Router) -> Result<(), &'static str> {
    let regions_of =
        |d: &Division| -> Vec<String> { router.regions.of(d).into_iter().map(|r| r.key.clone()).collect() };
    let allowed = match (caller, target) {
        (Principal::Operator(_), _) => true,
        (Principal::Agency(a), Sender::Agency(b)) => {
            a == b
                || related(a, b, router)
                || regions_of(&a.division).iter().any(|r| regions_of(&b.division).contains(r))
        }
        (Principal::Hub(key), Sender::Agency(b)) => {
            b.division == Division::NATIONAL || regions_of(&b.division).contains(key)
        }
        (Principal::Agency(a), Sender::Hub(key)) => {
            a.division == Division::NATIONAL || regions_of(&a.division).contains(key)
        }
        (Principal::Hub(mine), Sender::Hub(key)) => mine == key,
    };
    if allowed {
        Ok(())
    } else {
        Err(
            "only its counterparts, its superiors and subordinates, agencies of a key region with it, its region's hub and the operators may",
        )
    }
}

/// The same division, or one on the other's chain of superiors.
fn related(a: &AgencyId, b: &AgencyId, router: &Router) -> bool {
    a.division == b.division
        || router.divisions.superiors(&a.division).contains(&b.division)
        || router.divisions.superiors(&b.division).contains(&a.division)
}
