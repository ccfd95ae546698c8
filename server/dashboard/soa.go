package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// The Statement of Applicability pages: the list, an admin's edit of one
// line, and a printable document for the certification body.

type soaData struct {
	Scope    *apiv1.Scope
	Resp     *apiv1.SoAResponse
	Rows     []apiv1.SoAControl
	History  []apiv1.SoAChange
	Flagged  bool
	Info     Info
	Statuses []string
}

func (d *Dashboard) soaData(r *http.Request, p *page) (*soaData, error) {
	v, err := p.asOf()
	if err != nil {
		return nil, err
	}
	resp, err := d.b.SoA(r.Context(), v)
	if err != nil {
		return nil, err
	}
	scope, err := d.b.Scope(r.Context())
	if err != nil {
		return nil, err
	}
	data := &soaData{Scope: scope, Resp: resp, Flagged: p.Query.Get("flagged") != "", Info: d.b.Info(), Statuses: apiv1.SoAStatuses}
	for _, c := range resp.Controls {
		if data.Flagged && len(c.Flags) == 0 {
			continue
		}
		data.Rows = append(data.Rows, c)
	}
	return data, nil
}

func (d *Dashboard) soa(w http.ResponseWriter, r *http.Request, p *page) error {
	data, err := d.soaData(r, p)
	if err != nil {
		return err
	}
	hist, err := d.b.SoAHistory(r.Context(), url.Values{"limit": {"20"}})
	if err != nil {
		return err
	}
	data.History = hist.Items
	p.Title, p.Nav, p.Data = "Statement of Applicability", "soa", data
	d.render(w, http.StatusOK, "soa", p)
	return nil
}

// soaPrint is the Statement of Applicability as a document: every control,
// no navigation, laid out for paper.
func (d *Dashboard) soaPrint(w http.ResponseWriter, r *http.Request, p *page) error {
	data, err := d.soaData(r, p)
	if err != nil {
		return err
	}
	p.Title, p.Bare, p.Data = "Statement of Applicability", true, data
	d.render(w, http.StatusOK, "soa_print", p)
	return nil
}

func (d *Dashboard) soaLine(r *http.Request, p *page, id string) (*apiv1.SoAControl, error) {
	resp, err := d.b.SoA(r.Context(), url.Values{})
	if err != nil {
		return nil, err
	}
	for i := range resp.Controls {
		if resp.Controls[i].ID == id {
			return &resp.Controls[i], nil
		}
	}
	return nil, &pageError{status: http.StatusNotFound, msg: "no Annex A control " + id + " (2022 ids: 5.1 to 8.34)"}
}

func (d *Dashboard) soaEdit(w http.ResponseWriter, r *http.Request, p *page) error {
	line, err := d.soaLine(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return d.renderSoAEdit(w, p, line, "", http.StatusOK)
}

func (d *Dashboard) renderSoAEdit(w http.ResponseWriter, p *page, line *apiv1.SoAControl, msg string, status int) error {
	p.Title, p.Nav = "SoA: "+line.ID+" "+line.Title, "soa"
	p.Data = struct {
		Line     *apiv1.SoAControl
		Statuses []string
		Message  string
	}{line, apiv1.SoAStatuses, msg}
	d.render(w, status, "soa_edit", p)
	return nil
}

func (d *Dashboard) soaSave(w http.ResponseWriter, r *http.Request, p *page) error {
	f := r.PostForm
	applicable := f.Get("applicable") != "excluded"
	status, owner, why := f.Get("status"), f.Get("owner"), f.Get("justification")
	req := apiv1.SoARequest{Applicable: &applicable, Status: &status, Owner: &owner, Justification: &why}
	if _, err := d.b.UpdateSoA(r.Context(), p.User, r.PathValue("id"), req); err != nil {
		var st Status
		if asStatus(err, &st) && st.HTTPStatus() == http.StatusBadRequest {
			// Show the form again with what was typed and why it was refused.
			line, lerr := d.soaLine(r, p, r.PathValue("id"))
			if lerr != nil {
				return err
			}
			line.Applicable, line.Status, line.Owner, line.Justification = applicable, status, owner, why
			return d.renderSoAEdit(w, p, line, st.Message(), http.StatusBadRequest)
		}
		return err
	}
	http.Redirect(w, r, "/soa#c-"+strings.ReplaceAll(r.PathValue("id"), ".", "-"), http.StatusSeeOther)
	return nil
}
