package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/webhook"
)

func newWebhook(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Notify a URL of what a security team must act on (admin)",
		Long: `Webhooks POST a JSON event to a URL, signed with HMAC-SHA256: the header
Annexa-Signature is "t=<unix time>,v1=<hex HMAC(secret, "<t>." + body)>".
Events: ` + strings.Join(webhook.Events, ", ") + `.
Failed deliveries are retried with backoff (up to ` + strconv.Itoa(webhook.MaxAttempts) + ` attempts); every attempt is logged.`}
	var events []string
	var secret string
	add := &cobra.Command{
		Use: "add URL", Short: "Add a webhook; its signing secret is printed once", Args: cobra.ExactArgs(1), Annotations: outputs("table", "json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var resp apiv1.WebhookResponse
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/webhooks", nil, apiv1.WebhookRequest{URL: args[0], Events: events, Secret: secret}, &resp); err != nil {
				return err
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), "json", &table{raw: resp})
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Secret)
			what := "every event"
			if len(resp.Events) > 0 {
				what = strings.Join(resp.Events, ", ")
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "webhook %s added for %s; the signing secret above is not shown again\n", resp.ID, what)
			return nil
		},
	}
	add.Flags().StringSliceVar(&events, "event", nil, "event to send (repeatable; default every one): "+strings.Join(webhook.Events, ", "))
	add.Flags().StringVar(&secret, "secret", "", "signing secret, at least 16 characters (default: the server makes one)")
	list := &cobra.Command{
		Use: "list", Short: "List webhooks (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var page apiv1.Page[apiv1.Webhook]
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/webhooks", nil, nil, &page); err != nil {
				return err
			}
			t := &table{header: []string{"ID", "URL", "EVENTS", "CREATED", "BY"}, raw: page.Items}
			for _, h := range page.Items {
				ev := strings.Join(h.Events, ",")
				if ev == "" {
					ev = "all"
				}
				t.add(h.ID, h.URL, ev, ts(h.CreatedAt), h.CreatedBy)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	test := &cobra.Command{
		Use: "test ID", Short: "Send a ping now and say how it went", Args: cobra.ExactArgs(1), Annotations: outputs("table", "json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var res apiv1.WebhookTest
			if err := c.Do(cmd.Context(), http.MethodPost, "/v1/webhooks/"+url.PathEscape(args[0])+"/test", nil, struct{}{}, &res); err != nil {
				return err
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), "json", &table{raw: res})
			}
			if !res.Delivered {
				return fmt.Errorf("ping %s not delivered after %d ms: %s", res.DeliveryID, res.TookMS, res.Error)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ping %s delivered: HTTP %d in %d ms\n", res.DeliveryID, res.Status, res.TookMS)
			return nil
		},
	}
	rm := &cobra.Command{
		Use: "rm ID", Short: "Remove a webhook and its queue", Args: cobra.ExactArgs(1), Annotations: outputs("table"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, "/v1/webhooks/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "webhook %s removed\n", args[0])
			return nil
		},
	}
	var limit int
	deliveries := &cobra.Command{
		Use: "deliveries ID", Short: "The webhook's latest deliveries and how each went", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var page apiv1.Page[apiv1.WebhookDelivery]
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/webhooks/"+url.PathEscape(args[0])+"/deliveries", q, nil, &page); err != nil {
				return err
			}
			t := &table{header: []string{"DELIVERY", "EVENT", "CREATED", "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR"}, raw: page.Items}
			for _, d := range page.Items {
				state := "retrying at " + ts(d.NextAt)
				switch {
				case !d.DeliveredAt.IsZero():
					state = "delivered " + ts(d.DeliveredAt)
				case !d.FailedAt.IsZero():
					state = "given up " + ts(d.FailedAt)
				}
				t.add(d.ID, d.Event, ts(d.CreatedAt), state, strconv.Itoa(d.Attempts), strconv.Itoa(d.LastStatus), d.LastError)
			}
			return render(cmd.OutOrStdout(), g.output, t)
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 50, "how many, newest first")
	cmd.AddCommand(add, list, test, rm, deliveries)
	return cmd
}
