package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/webhook"
)

// createNodes creates the nodes with their pod CIDRs, then writes their InternalIPs through the
// status subresource, as a kubelet does.
func createNodes(ctx context.Context, c client.Client) error {
	for _, n := range nodes {
		obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{"kubernetes.io/hostname": n.Name}},
			Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR, PodCIDRs: []string{n.PodCIDR}}}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating node %s: %w", n.Name, err)
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
			obj.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
			obj.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
			return c.Status().Update(ctx, obj)
		})
		if err != nil {
			return fmt.Errorf("writing node %s's status: %w", n.Name, err)
		}
	}
	return nil
}

func createNamespaces(ctx context.Context, c client.Client) error {
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: nsInjected, Labels: map[string]string{webhook.LabelInject: webhook.InjectEnabled}}},
		{ObjectMeta: metav1.ObjectMeta{Name: nsPlain}},
		{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

// waitNodeLabels waits until the webhook's node-label controller has labelled every node.
func waitNodeLabels(ctx context.Context, c client.Client) (map[string]string, error) {
	var got map[string]string
	var listErr error
	err := poll(ctx, 90*time.Second, nil, func() (bool, string) {
		var list corev1.NodeList
		if listErr = c.List(ctx, &list); listErr != nil {
			return true, "" // stop: the API server refused
		}
		got = map[string]string{}
		for _, n := range list.Items {
			if v := n.Labels[webhook.LabelPodRoute]; v != "" {
				got[n.Name] = v
			}
		}
		return len(got) == len(nodes), fmt.Sprintf("the webhook did not label the nodes %s=published|missing within 90s (labelled: %v)", webhook.LabelPodRoute, got)
	})
	if listErr != nil {
		return nil, listErr
	}
	if err != nil {
		return nil, err
	}
	return got, nil
}

func newPod(a app) *corev1.Pod {
	port := corev1.ContainerPort{Name: "dubbo", ContainerPort: dubboPort, HostPort: a.HostPort, Protocol: corev1.ProtocolTCP}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace, Labels: map[string]string{"app": a.Application}},
		Spec: corev1.PodSpec{
			NodeName:   a.Node, // no scheduler here: the demo places pods itself
			Containers: []corev1.Container{{Name: "app", Image: "example.com/" + a.Application + ":1.0", Ports: []corev1.ContainerPort{port}}},
		},
	}
	if a.AddressAnnotation != "" {
		pod.Annotations = map[string]string{webhook.AnnotationAddress: a.AddressAnnotation}
	}
	return pod
}

// createPod creates the pod through the API server (which calls the webhook), then sets its
// status as the kubelet would once it runs. It returns the stored pod.
func createPod(ctx context.Context, c client.Client, a app) (*corev1.Pod, error) {
	pod := newPod(a)
	if err := c.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating pod %s/%s: %w", a.Namespace, a.Name, err)
	}
	n := nodeByName(a.Node)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP, pod.Status.PodIPs = a.PodIP, []corev1.PodIP{{IP: a.PodIP}}
		pod.Status.HostIP, pod.Status.HostIPs = n.IP, []corev1.HostIP{{IP: n.IP}}
		pod.Status.StartTime = &now
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		return c.Status().Update(ctx, pod)
	})
	if err != nil {
		return nil, fmt.Errorf("writing pod %s/%s's status: %w", a.Namespace, a.Name, err)
	}
	return pod, nil
}

// describeEnv shows what the webhook injected into the pod's first container, e.g.
// "DUBBO_IP_TO_REGISTRY=<status.hostIP> DUBBO_PORT_TO_REGISTRY=20880".
func describeEnv(pod *corev1.Pod) string {
	var parts []string
	for _, e := range pod.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			parts = append(parts, e.Name+"=<"+e.ValueFrom.FieldRef.FieldPath+">")
		default:
			parts = append(parts, e.Name+"="+e.Value)
		}
	}
	if len(parts) == 0 {
		return "nothing injected"
	}
	return strings.Join(parts, " ")
}

// injectionReason is the webhook's decision in words, from the dubboreach.io/injected annotation.
func injectionReason(pod *corev1.Pod) string {
	v, ok := pod.Annotations[webhook.AnnotationInjected]
	if !ok {
		return "namespace " + pod.Namespace + " is not labelled " + webhook.LabelInject + "=" + webhook.InjectEnabled
	}
	var r webhook.Record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return "unreadable " + webhook.AnnotationInjected + " annotation: " + err.Error()
	}
	s := string(r.Mode) + " mode: " + r.Reason
	if len(r.Warnings) > 0 {
		s += "; warnings: " + strings.Join(r.Warnings, "; ")
	}
	return s
}

// registeredAddress is what the pod's Dubbo application registers: Dubbo reads
// DUBBO_IP_TO_REGISTRY and DUBBO_PORT_TO_REGISTRY, which the kubelet resolves from the downward
// API; without them it registers the address of its network interface, the pod IP.
func registeredAddress(pod *corev1.Pod) (string, int) {
	ip, port := pod.Status.PodIP, dubboPort
	for _, e := range pod.Spec.Containers[0].Env {
		switch {
		case e.Name == webhook.EnvIP && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.hostIP":
				ip = pod.Status.HostIP
			case "status.podIP":
				ip = pod.Status.PodIP
			}
		case e.Name == webhook.EnvIP && e.Value != "":
			ip = e.Value
		case e.Name == webhook.EnvPort:
			if p, err := strconv.Atoi(e.Value); err == nil {
				port = p
			}
		}
	}
	return ip, port
}
