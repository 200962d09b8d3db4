//! A request parsed once, at the edge, into what its transaction needs: the transaction code decides
//! the shape (an exhaustive match), each field is read and checked with its place named in Chinese, and
//! what is applied afterwards never looks at the JSON again.

use super::envelope::{input_obj, str_field, Envelope, Infno, NResult};
use super::fees::{self, CatalogueQuery, ChronicDrugQuery, FeeCancel, FeeUpload};
use super::filing::{self, FilingCancel, FilingReq};
use super::person::{self, InstitutionQuery, PersonQuery};
use super::reversal::{self, Reversal};
use super::settle::{self, SettleRef, SettleReq};
use super::stmt::{self, DetailStatement, FileDownload, FileUpload, SettlementList, TotalsStatement};
use super::visits::{self, Discharge, Register, VisitChange, VisitQuery, VisitRef};

#[derive(Clone, Debug)]
pub enum Request {
    SignIn { opter_no: String },
    SignOut { sign_no: String },
    PersonInfo(PersonQuery),
    InstitutionInfo(InstitutionQuery),
    CatalogueQuery(CatalogueQuery),
    Register(Register),
    VisitCancel(VisitRef),
    VisitChange(VisitChange),
    Discharge(Discharge),
    DischargeCancel(VisitRef),
    VisitQuery(VisitQuery),
    FeeUpload(FeeUpload),
    FeeCancel(FeeCancel),
    FeeQuery(VisitRef),
    ChronicDrugQuery(ChronicDrugQuery),
    PreSettle(SettleReq),
    Settle(SettleReq),
    SettleCancel(SettleRef),
    SettlementQuery(SettleRef),
    ReferralFiling(FilingReq),
    ReferralFilingCancel(FilingCancel),
    Reversal(Reversal),
    TotalsStatement(TotalsStatement),
    DetailStatement(DetailStatement),
    SettlementList(SettlementList),
    FileUpload(FileUpload),
    FileDownload(FileDownload),
}

impl Request {
    pub fn parse(env: &Envelope) -> NResult<Request> {
        let infno = env.infno;
        Ok(match infno {
            Infno::SignIn => {
                // input.signIn {opter_no, mac, ip}; the envelope's opter when absent.
                let opter_no = match input_obj(env, &["signIn", "data"]) {
                    Ok((o, at)) => str_field(o, "opter_no", &at)?.filter(|s| !s.is_empty()).unwrap_or_else(|| env.opter.clone()),
                    Err(_) => env.opter.clone(),
                };
                Request::SignIn { opter_no: opter_no.chars().take(30).collect() }
            }
            Infno::SignOut => {
                let sign_no = match input_obj(env, &["signOut", "data"]) {
                    Ok((o, at)) => str_field(o, "sign_no", &at)?.filter(|s| !s.is_empty()).unwrap_or_else(|| env.sign_no.clone()),
                    Err(_) => env.sign_no.clone(),
                };
                Request::SignOut { sign_no }
            }
            Infno::PersonInfo => Request::PersonInfo(person::parse_person(env)?),
            Infno::InstitutionInfo => Request::InstitutionInfo(person::parse_institution_query(env)?),
            Infno::CatalogueQuery => Request::CatalogueQuery(fees::parse_catalogue_query(env)?),
            Infno::OutpatientRegister | Infno::Admission => Request::Register(visits::parse_register(infno, env)?),
            Infno::OutpatientRegisterCancel | Infno::AdmissionCancel => Request::VisitCancel(visits::parse_visit_ref(env)?),
            Infno::OutpatientVisitInfo | Infno::AdmissionChange => Request::VisitChange(visits::parse_change(infno, env)?),
            Infno::Discharge => Request::Discharge(visits::parse_discharge(env)?),
            Infno::DischargeCancel => Request::DischargeCancel(visits::parse_visit_ref(env)?),
            Infno::VisitQuery => Request::VisitQuery(visits::parse_visit_query(env)?),
            Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => Request::FeeUpload(fees::parse_fee_upload(env)?),
            Infno::OutpatientFeeCancel | Infno::InpatientFeeCancel => Request::FeeCancel(fees::parse_fee_cancel(infno, env)?),
            Infno::FeeQuery => Request::FeeQuery(visits::parse_visit_ref(env)?),
            Infno::ChronicDrugQuery => Request::ChronicDrugQuery(fees::parse_chronic_query(env)?),
            Infno::OutpatientPreSettle | Infno::InpatientPreSettle => Request::PreSettle(settle::parse_settle(infno, env)?),
            Infno::OutpatientSettle | Infno::InpatientSettle => Request::Settle(settle::parse_settle(infno, env)?),
            Infno::OutpatientSettleCancel | Infno::InpatientSettleCancel => Request::SettleCancel(settle::parse_settle_ref(env)?),
            Infno::SettlementQuery => Request::SettlementQuery(settle::parse_settle_ref(env)?),
            Infno::ReferralFiling => Request::ReferralFiling(filing::parse_filing(env)?),
            Infno::ReferralFilingCancel => Request::ReferralFilingCancel(filing::parse_cancel(env)?),
            Infno::Reversal => Request::Reversal(reversal::parse_reversal(env)?),
            Infno::TotalsStatement => Request::TotalsStatement(stmt::parse_totals(env)?),
            Infno::DetailStatement => Request::DetailStatement(stmt::parse_detail(env)?),
            Infno::SettlementList => Request::SettlementList(stmt::parse_settlement_list(env)?),
            Infno::FileUpload => Request::FileUpload(stmt::parse_upload(env)?),
            Infno::FileDownload => Request::FileDownload(stmt::parse_download(env)?),
        })
    }
}
